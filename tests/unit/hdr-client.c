/* The public header must compile on its own, first and alone. */
#include "muser/client.h"
int mu_hdr_client(void);
int mu_hdr_client(void) { return 0; }
