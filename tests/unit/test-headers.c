/* SPDX-License-Identifier: BSD-3-Clause */
/* Links the standalone header TUs; compiling them is the test. */
int mu_hdr_wire(void);
int mu_hdr_device(void);
int mu_hdr_client(void);

int main(void)
{
	return mu_hdr_wire() + mu_hdr_device() + mu_hdr_client();
}
