/* The public header must compile on its own, first and alone. */
#include "muser/wire.h"
int mu_hdr_wire(void);
int mu_hdr_wire(void) { return 0; }
