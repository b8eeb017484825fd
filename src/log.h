/*
 * Levelled logging to stderr.  log_debug() checks the level before any
 * formatting, so debug lines on a hot path cost one comparison when off.
 */
#ifndef PUNCH_LOG_H
#define PUNCH_LOG_H

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_EVENT = 3, /* one line per protocol event: the server's -log info */
	LOG_DEBUG = 4,
};

extern enum log_level log_threshold;

void log_set_level(enum log_level level);
/* Each line starts "<tag>: "; the default tag is "punch". */
void log_set_tag(const char *tag);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                             \
	do {                                           \
		if ((level) <= log_threshold)          \
			log_msg((level), __VA_ARGS__); \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_event(...) log_at(LOG_EVENT, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
