/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: GET_IRQ_INFO, SET_IRQS, masks, MSI-X table/PBA, INTx level. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"


/* Number of events on efd (0 if none), non-blocking. */
static uint64_t events(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int set_irqs(struct tc *c, uint32_t flags, uint32_t index,
		    uint32_t start, uint32_t count, const void *data,
		    size_t dlen, const int *fds, unsigned nfds)
{
	uint8_t buf[64];
	struct mu_irq_set s = {sizeof(s) + (uint32_t)dlen, flags, index, start,
			       count};

	memcpy(buf, &s, sizeof(s));
	if (dlen)
		memcpy(buf + sizeof(s), data, dlen);
	return tc_call(c, MU_CMD_DEVICE_SET_IRQS, 0, buf, sizeof(s) + dlen, fds,
		       nfds, NULL, 0, NULL, NULL, NULL);
}

#define EFD_TRIG (MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER)
#define NONE_MASK (MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_MASK)
#define NONE_UNMASK (MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_UNMASK)
#define NONE_TRIG (MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER)

static void test_irq_info(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	struct mu_irq_info ii;
	static const uint32_t counts[5] = {1, TD_MSI_VECS, TD_MSIX_VECS, 1, 1};
	uint32_t i;

	for (i = 0; i < 5; i++) {
		ii = (struct mu_irq_info){sizeof(ii), 0, i, 0};
		assert_int_equal(tc_call(c, MU_CMD_DEVICE_GET_IRQ_INFO, 0, &ii,
					 sizeof(ii), NULL, 0, &ii, sizeof(ii),
					 NULL, NULL, NULL),
				 0);
		assert_int_equal(ii.count, counts[i]);
		assert_true(ii.flags & MU_IRQ_INFO_EVENTFD);
		assert_true(ii.flags & MU_IRQ_INFO_MASKABLE);
		assert_int_equal(!!(ii.flags & MU_IRQ_INFO_AUTOMASKED), i == 0);
	}
	ii = (struct mu_irq_info){sizeof(ii), 0, 5, 0};
	assert_int_equal(tc_call(c, MU_CMD_DEVICE_GET_IRQ_INFO, 0, &ii,
				 sizeof(ii), NULL, 0, NULL, 0, NULL, NULL,
				 NULL),
			 -EINVAL);
}

static void test_set_irqs_errors(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	int fds[2] = {eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)};
	int before;

	before = count_open_fds();
	/* fd count does not match count */
	assert_int_equal(set_irqs(c, EFD_TRIG, 2, 0, 3, NULL, 0, fds, 2),
			 -EINVAL);
	/* out of range */
	assert_int_equal(set_irqs(c, EFD_TRIG, 2, 7, 2, NULL, 0, fds, 2),
			 -EINVAL);
	assert_int_equal(set_irqs(c, EFD_TRIG, 9, 0, 2, NULL, 0, fds, 2),
			 -EINVAL);
	/* two data flags */
	assert_int_equal(set_irqs(c, EFD_TRIG | MU_IRQ_SET_DATA_NONE, 2, 0, 2,
				  NULL, 0, fds, 2),
			 -EINVAL);
	/* bool data length lies */
	assert_int_equal(
		set_irqs(c, MU_IRQ_SET_DATA_BOOL | MU_IRQ_SET_ACTION_TRIGGER, 2,
			 0, 2, "\1", 1, NULL, 0),
		-EINVAL);
	/* mask notifier eventfds are not supported */
	assert_int_equal(
		set_irqs(c, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_MASK, 2,
			 0, 2, NULL, 0, fds, 2),
		-ENOTSUP);
	/* every fd we sent was closed on the server side */
	assert_int_equal(count_open_fds(), before);
	close(fds[0]);
	close(fds[1]);
}

static void test_msi_eventfd_and_mask(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK);

	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 1),
			 -ENOENT);
	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_MSI_IRQ_INDEX, 1, 1,
				  NULL, 0, &efd, 1),
			 0);
	assert_int_equal(mu_irq_active_index(f->t.dev), MU_PCI_MSI_IRQ_INDEX);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 1), 0);
	assert_int_equal(events(efd), 1);
	/* SET_IRQS mask: left pending, fires on unmask */
	assert_int_equal(set_irqs(&f->c, NONE_MASK, MU_PCI_MSI_IRQ_INDEX, 1, 1,
				  NULL, 0, NULL, 0),
			 0);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 1), 1);
	assert_int_equal(events(efd), 0);
	assert_int_equal(set_irqs(&f->c, NONE_UNMASK, MU_PCI_MSI_IRQ_INDEX, 1,
				  1, NULL, 0, NULL, 0),
			 0);
	assert_int_equal(events(efd), 1);
	/* loopback trigger from the client, DATA_BOOL selecting vector 1 */
	assert_int_equal(
		set_irqs(&f->c,
			 MU_IRQ_SET_DATA_BOOL | MU_IRQ_SET_ACTION_TRIGGER,
			 MU_PCI_MSI_IRQ_INDEX, 0, 2, "\0\1", 2, NULL, 0),
		0);
	assert_int_equal(events(efd), 1);
	/* count 0 DATA_NONE TRIGGER disables the index */
	assert_int_equal(set_irqs(&f->c, NONE_TRIG, MU_PCI_MSI_IRQ_INDEX, 0, 0,
				  NULL, 0, NULL, 0),
			 0);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 1),
			 -ENOENT);
	assert_int_equal(mu_irq_active_index(f->t.dev), -1);
	close(efd);
}

/* A client that clears O_NONBLOCK on its eventfd and fills the counter
 * must not make the server block in write(). */
static void test_full_eventfd_never_blocks(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t full = 0xfffffffffffffffeull;

	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_MSI_IRQ_INDEX, 0, 1,
				  NULL, 0, &efd, 1),
			 0);
	assert_int_equal(fcntl(efd, F_SETFL, 0), 0); /* blocking again */
	assert_int_equal(write(efd, &full, sizeof(full)), sizeof(full));
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 0), 0);
	/* the server still answers: a client-side trigger comes back too */
	assert_int_equal(set_irqs(&f->c, NONE_TRIG, MU_PCI_MSI_IRQ_INDEX, 0, 1,
				  NULL, 0, NULL, 0),
			 0);
	assert_int_equal(events(efd), full);
	close(efd);
}

static void test_msi_per_vector_mask(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint8_t ptr = (uint8_t)tc_cfg32(&f->c, 0x34);
	unsigned msi = (uint8_t)(tc_cfg32(&f->c, ptr) >> 8);

	assert_int_equal(tc_cfg32(&f->c, msi) & 0xff, 0x05);
	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_MSI_IRQ_INDEX, 0, 1,
				  NULL, 0, &efd, 1),
			 0);
	tc_cfg_w32(&f->c, msi + 16, 1); /* mask vector 0 (64-bit layout) */
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSI_IRQ_INDEX, 0), 1);
	assert_int_equal(tc_cfg32(&f->c, msi + 20), 1); /* pending */
	assert_int_equal(events(efd), 0);
	tc_cfg_w32(&f->c, msi + 16, 0);
	assert_int_equal(events(efd), 1);
	assert_int_equal(tc_cfg32(&f->c, msi + 20), 0);
	close(efd);
}

static void test_msix_table_pba(void **state)
{
	struct fx *f = *state;
	int efd[TD_MSIX_VECS];
	unsigned i;
	uint32_t ctl, v;
	uint64_t pba;
	uint8_t ptr = (uint8_t)tc_cfg32(&f->c, 0x34);
	unsigned msix = 0;

	while (ptr) {
		uint32_t h = tc_cfg32(&f->c, ptr);

		if ((h & 0xff) == 0x11)
			msix = ptr;
		ptr = (uint8_t)(h >> 8);
	}
	assert_true(msix);
	assert_int_equal(tc_cfg32(&f->c, msix) >> 16 & 0x7ff, TD_MSIX_VECS - 1);
	assert_int_equal(tc_cfg32(&f->c, msix + 4), 4);		 /* BIR 4 */
	assert_int_equal(tc_cfg32(&f->c, msix + 8), 0x2000 | 4); /* PBA */
	for (i = 0; i < TD_MSIX_VECS; i++)
		efd[i] = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_MSIX_IRQ_INDEX, 0,
				  TD_MSIX_VECS, NULL, 0, efd, TD_MSIX_VECS),
			 0);
	/* the table starts masked, but counts only once written */
	assert_int_equal(tc_read(&f->c, 4, 12, &ctl, 4), 0);
	assert_int_equal(ctl, 1);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSIX_IRQ_INDEX, 2), 0);
	assert_int_equal(events(efd[2]), 1);
	/* program vector 3 and keep it masked */
	v = 0xfee00000;
	assert_int_equal(tc_write(&f->c, 4, 3 * 16, &v, 4), 0);
	assert_int_equal(tc_read(&f->c, 4, 3 * 16, &v, 4), 0);
	assert_int_equal(v, 0xfee00000);
	ctl = 0xffffffff; /* reserved bits stay 0 */
	assert_int_equal(tc_write(&f->c, 4, 3 * 16 + 12, &ctl, 4), 0);
	assert_int_equal(tc_read(&f->c, 4, 3 * 16 + 12, &ctl, 4), 0);
	assert_int_equal(ctl, 1);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSIX_IRQ_INDEX, 3), 1);
	assert_int_equal(events(efd[3]), 0);
	assert_int_equal(tc_read(&f->c, 4, 0x2000, &pba, 8), 0);
	assert_int_equal(pba, 1u << 3);
	/* PBA is read-only */
	pba = 0;
	assert_int_equal(tc_write(&f->c, 4, 0x2000, &pba, 8), 0);
	assert_int_equal(tc_read(&f->c, 4, 0x2000, &pba, 8), 0);
	assert_int_equal(pba, 1u << 3);
	/* unmask: fires, PBA bit clears */
	ctl = 0;
	assert_int_equal(tc_write(&f->c, 4, 3 * 16 + 12, &ctl, 4), 0);
	assert_int_equal(events(efd[3]), 1);
	assert_int_equal(tc_read(&f->c, 4, 0x2000, &pba, 8), 0);
	assert_int_equal(pba, 0);
	/* function mask */
	tc_cfg_w32(&f->c, msix, (TD_MSIX_VECS - 1) << 16 | 0xc000u << 16);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_MSIX_IRQ_INDEX, 3), 1);
	assert_int_equal(events(efd[3]), 0);
	tc_cfg_w32(&f->c, msix, 0x8000u << 16);
	assert_int_equal(events(efd[3]), 1);
	/* a read straddling the table end */
	assert_int_equal(tc_read(&f->c, 4, TD_MSIX_VECS * 16 - 4, &pba, 8),
			 -EINVAL);
	/* outside table and PBA: plain memory */
	assert_int_equal(tc_read(&f->c, 4, 0x3000, &pba, 8), 0);
	for (i = 0; i < TD_MSIX_VECS; i++)
		close(efd[i]);
}

static void test_intx_level(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK);

	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_INTX_IRQ_INDEX, 0, 1,
				  NULL, 0, &efd, 1),
			 0);
	assert_int_equal(mu_irq_active_index(f->t.dev), MU_PCI_INTX_IRQ_INDEX);
	assert_int_equal(mu_irq_set_intx(f->t.dev, true), 0);
	assert_int_equal(events(efd), 1);
	assert_true(tc_cfg32(&f->c, 0x04) >> 16 & 0x08); /* INTx status */
	/* auto-masked: unmask re-fires while asserted */
	assert_int_equal(set_irqs(&f->c, NONE_UNMASK, MU_PCI_INTX_IRQ_INDEX, 0,
				  1, NULL, 0, NULL, 0),
			 0);
	assert_int_equal(events(efd), 1);
	assert_int_equal(mu_irq_set_intx(f->t.dev, false), 0);
	assert_false(tc_cfg32(&f->c, 0x04) >> 16 & 0x08);
	assert_int_equal(set_irqs(&f->c, NONE_UNMASK, MU_PCI_INTX_IRQ_INDEX, 0,
				  1, NULL, 0, NULL, 0),
			 0);
	assert_int_equal(events(efd), 0);
	/* notify: INTx asserts the level */
	assert_int_equal(mu_irq_notify(f->t.dev, 0), 0);
	assert_int_equal(events(efd), 1);
	mu_irq_set_intx(f->t.dev, false);
	close(efd);
}

static void test_err_req_and_disconnect(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK), before;

	assert_int_equal(set_irqs(&f->c, EFD_TRIG, MU_PCI_REQ_IRQ_INDEX, 0, 1,
				  NULL, 0, &efd, 1),
			 0);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_REQ_IRQ_INDEX, 0), 0);
	assert_int_equal(events(efd), 1);
	close(efd);
	/* the server's copy goes away with the client */
	before = count_open_fds() - 1;
	tc_close(&f->c);
	assert_int_equal(tc_open(&f->c, f->t.path), 0);
	assert_int_equal(mu_irq_trigger(f->t.dev, MU_PCI_REQ_IRQ_INDEX, 0),
			 -ENOENT);
	assert_int_equal(count_open_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_irq_info, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_set_irqs_errors, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_msi_eventfd_and_mask,
						fx_setup, fx_teardown),
				cmocka_unit_test_setup_teardown(test_full_eventfd_never_blocks,
						fx_setup, fx_teardown),
cmocka_unit_test_setup_teardown(test_msi_per_vector_mask, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_msix_table_pba, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_intx_level, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_err_req_and_disconnect,
						fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
