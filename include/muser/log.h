/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log.h - the log levels of both libraries (syslog's numbers), so a
 * program using libmuser and libmuser-client has one vocabulary and one
 * log function shape for both.
 */
#ifndef MUSER_LOG_H
#define MUSER_LOG_H

enum mu_log_level {
	MU_LOG_ERR = 3,
	MU_LOG_WARN = 4,
	MU_LOG_INFO = 6,
	MU_LOG_DEBUG = 7,
};

#endif
