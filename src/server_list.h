/*
 * The client's -server list: HOST:PORT entries given comma-separated, or
 * with -server repeated, or both.  Pure and bounds-checked: it checks the
 * form (a HOST, a PORT 1-65535) and resolves nothing; the client resolves
 * each entry when it starts.
 */
#ifndef PUNCH_SERVER_LIST_H
#define PUNCH_SERVER_LIST_H

#include <stddef.h>

#include "addr.h"

enum {
	SERVER_LIST_MAX = 8,    /* servers in all, over every -server */
	SERVER_HOST_MAX = ADDR_HOST_MAX,
	/* "[" HOST "]:" PORT */
	SERVER_NAME_MAX = SERVER_HOST_MAX + 8,
};

struct server_list {
	char name[SERVER_LIST_MAX][SERVER_NAME_MAX + 1]; /* as given */
	int n;
};

/* Add one -server argument's entries.  0, or -1 with a sentence in why
 * (and the list as it was before this argument). */
int server_list_add(struct server_list *l, const char *arg, char *why,
                    size_t len);

#endif
