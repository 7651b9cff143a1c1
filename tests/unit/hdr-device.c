/* The public header must compile on its own, first and alone. */
#include "muser/device.h"
int mu_hdr_device(void);
int mu_hdr_device(void) { return 0; }
