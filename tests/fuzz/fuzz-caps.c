/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer: the VERSION payload and its JSON capabilities. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire-core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_caps caps;
	uint16_t major, minor;
	char out[512];

	if (mu_version_parse(data, size, &major, &minor, &caps) == 0) {
		/* Whatever parsed must format and parse back the same. */
		struct mu_caps back;
		uint8_t buf[600];
		int n;

		caps.twin_fd_index = caps.twin_socket ? 0 : -1;
		n = mu_caps_format(&caps, out, sizeof(out));
		if (n > 0) {
			memset(buf, 0, 4);
			memcpy(buf + 4, out, (size_t)n);
			if (mu_version_parse(buf, 4 + (size_t)n, &major, &minor,
					     &back) != 0 ||
			    back.max_msg_fds != caps.max_msg_fds ||
			    back.max_data_xfer_size != caps.max_data_xfer_size ||
			    back.pgsizes != caps.pgsizes)
				__builtin_trap();
		}
	}
	return 0;
}
