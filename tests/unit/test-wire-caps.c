/* SPDX-License-Identifier: BSD-3-Clause */
/* VERSION payloads as the peers in the field send them, and bad ones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wire-core.h"

static int parse(uint16_t major, uint16_t minor, const char *json,
		 struct mu_caps *c, uint16_t *maj, uint16_t *min)
{
	static uint8_t buf[1 << 16];
	size_t n = json ? strlen(json) + 1 : 0;
	struct mu_version v = {major, minor};

	memcpy(buf, &v, sizeof(v));
	if (json)
		memcpy(buf + sizeof(v), json, n);
	return mu_version_parse(buf, sizeof(v) + n, maj, min, c);
}

static void test_qemu_proposal(void **state)
{
	struct mu_caps c;
	uint16_t maj, min;

	(void)state;
	assert_int_equal(
		parse(0, 0,
		      "{\"capabilities\":{\"max_msg_fds\":16,"
		      "\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
		      "\"max_dma_maps\":65535,\"migration\":{\"pgsize\":4096,"
		      "\"max_bitmap_size\":1048576},\"write_multiple\":true}}",
		      &c, &maj, &min),
		0);
	assert_int_equal(maj, 0);
	assert_int_equal(min, 0);
	assert_int_equal(c.max_msg_fds, 16);
	assert_int_equal(c.max_data_xfer_size, 1 << 20);
	assert_int_equal(c.max_dma_maps, 65535);
	assert_true(c.write_multiple);
	assert_true(c.migration);
	assert_false(c.twin_socket);
}

static void test_rust_vmm_proposal(void **state)
{
	struct mu_caps c;
	uint16_t maj, min;

	(void)state;
	assert_int_equal(parse(0, 1,
			       "{\"capabilities\":{\"max_msg_fds\":1,"
			       "\"max_data_xfer_size\":1048576,"
			       "\"migration\":{\"pgsize\":4096}}}",
			       &c, &maj, &min),
			 0);
	assert_int_equal(min, 1);
	assert_int_equal(c.max_msg_fds, 1);
	assert_int_equal(c.pgsizes, 4096); /* default */
	assert_int_equal(c.max_dma_maps, MU_DEFAULT_MAX_DMA_MAPS);
	assert_false(c.write_multiple);
}

static void test_libvfio_user_proposal(void **state)
{
	struct mu_caps c;
	uint16_t maj, min;

	(void)state;
	assert_int_equal(parse(0, 2,
			       "{\"capabilities\":{\"max_msg_fds\":8,"
			       "\"max_data_xfer_size\":1048576,"
			       "\"twin_socket\":{\"supported\":true},"
			       "\"migration\":{\"pgsize\":4096,"
			       "\"max_bitmap_size\":268435456}}}",
			       &c, &maj, &min),
			 0);
	assert_int_equal(min, 2);
	assert_true(c.twin_socket);
	assert_int_equal(c.twin_fd_index, -1);
}

static void test_defaults_and_unknown_keys(void **state)
{
	struct mu_caps c;
	uint16_t maj, min;

	(void)state;
	assert_int_equal(parse(0, 2, NULL, &c, &maj, &min), 0);
	assert_int_equal(c.max_msg_fds, MU_DEFAULT_MAX_MSG_FDS);
	assert_int_equal(c.max_data_xfer_size, MU_DEFAULT_MAX_DATA_XFER);
	assert_int_equal(parse(0, 2, "{}", &c, &maj, &min), 0);
	assert_int_equal(parse(0, 2,
			       "{\"capabilities\":{\"future\":[1,2,{\"x\":1}]},"
			       "\"other\":\"x\"}",
			       &c, &maj, &min),
			 0);
	assert_int_equal(parse(7, 9, "{}", &c, &maj, &min), 0);
	assert_int_equal(maj, 7); /* the caller decides on the major */
}

static void test_bad_json(void **state)
{
	static const char *bad[] = {
		"{",
		"[]",
		"42",
		"{\"capabilities\":[]}",
		"{\"capabilities\":{\"max_msg_fds\":\"16\"}}",
		"{\"capabilities\":{\"max_msg_fds\":-1}}",
		"{\"capabilities\":{\"max_msg_fds\":1.5}}",
		"{\"capabilities\":{\"max_data_xfer_size\":4}}",
		"{\"capabilities\":{\"max_data_xfer_size\":4294967296}}",
		"{\"capabilities\":{\"pgsizes\":0}}",
		"{\"capabilities\":{\"write_multiple\":1}}",
		"{\"capabilities\":{\"twin_socket\":true}}",
		"{\"capabilities\":{\"twin_socket\":{\"supported\":\"yes\"}}}",
		"{\"capabilities\":{\"twin_socket\":{\"fd_index\":999}}}",
		"{} trailing",
		"\xff\xfe",
	};
	struct mu_caps c;
	uint16_t maj, min;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(0, 2, bad[i], &c, &maj, &min), -EINVAL);
}

static void test_deep_and_huge(void **state)
{
	char *deep = malloc(4096);
	struct mu_caps c;
	uint16_t maj, min;
	static uint8_t buf[MU_CAPS_JSON_MAX + 64];
	size_t i;

	(void)state;
	for (i = 0; i < 1000; i++)
		deep[i] = '[';
	deep[1000] = 0;
	assert_int_equal(parse(0, 2, deep, &c, &maj, &min), -EINVAL);
	strcpy(deep, "{\"a\":");
	for (i = 0; i < 40; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "1");
	for (i = 0; i < 41; i++)
		strcat(deep, "}");
	assert_int_equal(parse(0, 2, deep, &c, &maj, &min), -EINVAL);
	free(deep);
	memset(buf, ' ', sizeof(buf));
	buf[4] = '{';
	buf[sizeof(buf) - 2] = '}';
	buf[sizeof(buf) - 1] = 0;
	assert_int_equal(mu_version_parse(buf, sizeof(buf), &maj, &min, &c),
			 -E2BIG);
	/* garbage after the NUL terminator */
	memcpy(buf + 4, "{}\0x", 4);
	assert_int_equal(mu_version_parse(buf, 8, &maj, &min, &c), -EINVAL);
	/* JSON without its NUL is accepted */
	assert_int_equal(mu_version_parse(buf, 6, &maj, &min, &c), 0);
	assert_int_equal(mu_version_parse(buf, 3, &maj, &min, &c), -EINVAL);
}

static void test_format_roundtrip(void **state)
{
	struct mu_caps c, back;
	char json[512];
	uint8_t buf[600];
	uint16_t maj, min;
	int n;

	(void)state;
	mu_caps_defaults(&c);
	c.max_msg_fds = 16;
	c.max_data_xfer_size = 65536;
	c.write_multiple = true;
	c.twin_socket = true;
	c.twin_fd_index = 0;
	n = mu_caps_format(&c, json, sizeof(json));
	assert_true(n > 0);
	assert_int_equal(json[n - 1], 0);
	memcpy(buf, &(struct mu_version){0, 2}, 4);
	memcpy(buf + 4, json, (size_t)n);
	assert_int_equal(mu_version_parse(buf, 4 + (size_t)n, &maj, &min, &back),
			 0);
	assert_int_equal(back.max_msg_fds, 16);
	assert_int_equal(back.max_data_xfer_size, 65536);
	assert_true(back.write_multiple);
	assert_true(back.twin_socket);
	assert_int_equal(back.twin_fd_index, 0);
	assert_int_equal(mu_caps_format(&c, json, 10), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_proposal),
		cmocka_unit_test(test_rust_vmm_proposal),
		cmocka_unit_test(test_libvfio_user_proposal),
		cmocka_unit_test(test_defaults_and_unknown_keys),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_deep_and_huge),
		cmocka_unit_test(test_format_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
