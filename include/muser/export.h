/* SPDX-License-Identifier: BSD-3-Clause */
/* Symbol visibility: the libraries build with -fvisibility=hidden and mark
 * each public function with MU_EXPORT. */
#ifndef MUSER_EXPORT_H
#define MUSER_EXPORT_H

#if defined(MU_BUILDING_LIBRARY)
#define MU_EXPORT __attribute__((visibility("default")))
#else
#define MU_EXPORT
#endif

#endif
