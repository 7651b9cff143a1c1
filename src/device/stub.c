/* placeholder until the device library lands */
#include "muser/device.h"
MU_EXPORT void *mu_dev_opaque(mu_dev_t *dev) { (void)dev; return 0; }
