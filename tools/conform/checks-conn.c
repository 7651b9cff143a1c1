/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-conn.c - connection life cycle: reconnect and negotiate again,
 * what a departed client leaves behind (DMA windows, eventfds), a second
 * client while one is attached, and torn or lying headers followed by
 * the server still serving the next client.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "checks.h"

static int k_reconnect(struct cf_ctx *x)
{
	struct mu_device_info first;
	struct cf_conn *c;
	int i;

	for (i = 0; i < 3; i++) {
		if (cf_open_session(x, &c) < 0)
			return cf_set(x, CF_FAIL, "reconnect %d: %.180s", i,
				      x->ev);
		x->c = c;
		x->have_info = false;
		if (cf_get_info(x) < 0) {
			x->c = NULL;
			cf_conn_close(c);
			return CF_FAIL;
		}
		x->c = NULL;
		cf_conn_close(c);
		if (i == 0)
			first = x->info;
		else if (memcmp(&first, &x->info, sizeof(first)))
			return cf_set(x, CF_FAIL,
				      "GET_INFO differs after "
				      "reconnecting");
	}
	return cf_set(x, CF_PASS,
		      "3 connections in a row, each negotiated "
		      "afresh, same device info");
}

static int k_maps_dropped(struct cf_ctx *x)
{
	static uint8_t buf[4096];
	struct cf_conn *c;
	int e;

	if (cf_open_session(x, &c) < 0)
		return CF_FAIL;
	x->c = c;
	e = cf_dma_map(x, 0x500000000ull, sizeof(buf),
		       MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE, -1, buf);
	x->c = NULL;
	cf_conn_close(c);
	if (e < 0)
		return CF_FAIL;
	if (cf_open_session(x, &c) < 0)
		return CF_FAIL;
	x->c = c;
	e = cf_dma_unmap(x, 0x500000000ull, sizeof(buf), 0);
	x->c = NULL;
	cf_conn_close(c);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "a departed client's DMA window was "
			      "still mapped for the next client");
	return cf_set(x, CF_PASS,
		      "the next client finds no window of the "
		      "last one (unmap: %s)",
		      cf_errname(e));
}

/* Client A wires an eventfd; after A leaves, client B triggers the
 * vector: A's eventfd must stay quiet. */
static int k_irqs_dropped(struct cf_ctx *x)
{
	const uint32_t wire =
		MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER;
	const uint32_t trig = MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER;
	struct mu_irq_info ii;
	struct cf_conn *c;
	int efd, idx = -1, e, st;
	unsigned i;

	if (cf_open_session(x, &c) < 0)
		return CF_FAIL;
	x->c = c;
	if (cf_get_info(x) < 0)
		goto broken;
	for (i = MU_PCI_ERR_IRQ_INDEX; i < x->info.num_irqs && i < 5; i++) {
		if (cf_irq_info(x, i, &ii) < 0)
			goto broken;
		if (ii.count && (ii.flags & MU_IRQ_INFO_EVENTFD)) {
			idx = (int)i;
			break;
		}
	}
	if (idx < 0) {
		x->c = NULL;
		cf_conn_close(c);
		return cf_set(x, CF_SKIP, "no ERR or REQ vector to test with");
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e = cf_set_irqs(x, wire, (uint32_t)idx, 0, 1, &efd, 1);
	if (e == 0)
		e = cf_set_irqs(x, trig, (uint32_t)idx, 0, 1, NULL, 0);
	x->c = NULL;
	cf_conn_close(c);
	if (e < 0) {
		close(efd);
		return e == CF_EBROKEN ? CF_FAIL
				       : cf_set(x, CF_SKIP,
						"client triggers refused (%s)",
						cf_errname(e));
	}
	cf_eventfd_wait(efd, x->timeout_ms);
	if (cf_open_session(x, &c) < 0) {
		close(efd);
		return CF_FAIL;
	}
	x->c = c;
	e = cf_set_irqs(x, trig, (uint32_t)idx, 0, 1, NULL, 0);
	x->c = NULL;
	cf_conn_close(c);
	if (e == CF_EBROKEN) {
		close(efd);
		return CF_FAIL;
	}
	st = cf_eventfd_wait(efd, 200)
		     ? cf_set(x, CF_FAIL,
			      "a departed client's eventfd was signalled by a "
			      "trigger from the next client")
		     : cf_set(x, CF_PASS,
			      "the next client's trigger left the "
			      "departed client's eventfd quiet");
	close(efd);
	return st;
broken:
	x->c = NULL;
	cf_conn_close(c);
	return CF_FAIL;
}

static int k_second_client(struct cf_ctx *x)
{
	struct cf_conn *b;
	struct cf_msg m;
	int e, st;

	e = cf_conn_open(&b, x->path, x->timeout_ms, &x->dma);
	if (e < 0)
		return cf_set(x, CF_PASS, "second connection refused: %s",
			      strerror(-e));
	e = cf_version_call(b, 0, 2, CF_STD_JSON, &m);
	if (e == -ECONNRESET)
		st = cf_set(x, CF_PASS, "second client: connection closed");
	else if (e == -ETIMEDOUT)
		st = cf_set(x, CF_WARN,
			    "second client got no answer in %d ms: it can't "
			    "tell busy from hung",
			    x->timeout_ms);
	else if (e < 0)
		st = cf_lost(x, e, "second client's VERSION");
	else if (cf_is_error(&m))
		st = cf_set(x, CF_PASS, "second client refused with %s",
			    cf_errname(cf_reply_errno(&m)));
	else
		st = cf_set(x, CF_PASS, "second client served too");
	cf_msg_free(&m);
	cf_conn_close(b);
	if (st == CF_FAIL)
		return st;
	{
		char keep[CF_EV_MAX];

		snprintf(keep, sizeof(keep), "%s", x->ev);
		if (cf_sync(x, "a second client came and went") < 0)
			return CF_FAIL;
		snprintf(x->ev, sizeof(x->ev), "%.200s; the first still served",
			 keep);
	}
	return st;
}

/* Send bytes on a negotiated connection, hang up, and check that the
 * server still serves the next client. */
static int then_alive(struct cf_ctx *x, const void *bytes, size_t len,
		      const char *what)
{
	struct cf_conn *c;

	if (cf_open_session(x, &c) < 0)
		return CF_FAIL;
	cf_send_bytes(c, bytes, len);
	cf_conn_close(c);
	if (cf_open_session(x, &c) < 0)
		return cf_set(x, CF_FAIL, "after %s: next client: %.150s", what,
			      x->ev);
	x->c = c;
	if (cf_sync(x, what) < 0) {
		x->c = NULL;
		cf_conn_close(c);
		return CF_FAIL;
	}
	x->c = NULL;
	cf_conn_close(c);
	return cf_set(x, CF_PASS, "after %s the next client is served", what);
}

static int k_torn(struct cf_ctx *x)
{
	struct mu_hdr h = {1, MU_CMD_DEVICE_GET_INFO, 32, 0, 0};

	return then_alive(x, &h, 10, "10 bytes of a header and a hang-up");
}

static int k_short_header(struct cf_ctx *x)
{
	struct mu_hdr h = {1, MU_CMD_DEVICE_GET_INFO, 8, 0, 0};

	return then_alive(x, &h, sizeof(h), "a header claiming size 8");
}

static int k_huge_size(struct cf_ctx *x)
{
	uint8_t b[sizeof(struct mu_hdr) + 64] = {0};
	struct mu_hdr h = {1, MU_CMD_REGION_WRITE, 0xfffffff0u, 0, 0};

	memcpy(b, &h, sizeof(h));
	return then_alive(x, b, sizeof(b), "a header claiming 4 GiB");
}

const struct cf_check cf_checks_conn[] = {
	{"conn.reconnect", S_DISC, "2.5",
	 "a client can disconnect, reconnect and negotiate again", CF_NEED_NONE,
	 k_reconnect},
	{"conn.maps-dropped", S_DISC, "2.5",
	 "a departed client's DMA windows are unmapped", CF_NEED_NONE,
	 k_maps_dropped},
	{"conn.irqs-dropped", S_DISC, "2.5",
	 "a departed client's eventfds are no longer signalled", CF_NEED_NONE,
	 k_irqs_dropped},
	{"conn.second-client", S_SOCK, "2.2",
	 "a second client is refused or served, and the first keeps working",
	 CF_NEED_SESSION, k_second_client},
	{"conn.torn-message", S_DISC, "2.5",
	 "a client that hangs up mid-header doesn't take the server down",
	 CF_NEED_NONE, k_torn},
	{"conn.short-header", S_HDR, "3.2",
	 "a header with size below 16 doesn't take the server down",
	 CF_NEED_NONE, k_short_header},
	{"conn.huge-size", S_SIZES, "8.1",
	 "a header claiming 4 GiB doesn't take the server down", CF_NEED_NONE,
	 k_huge_size},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
