#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "identity.h"

static const char usage[] =
	"usage: punch id\n"
	"\n"
	"Print this machine's identity: the fingerprint of its Ed25519 key,\n"
	"which peers check (give it to them for -peer-key) and which the server\n"
	"binds your id to. The key is made on first use, mode 0600, in\n"
	"$XDG_CONFIG_HOME/punch/ (or ~/.config/punch/), beside known_peers.\n";

int cmd_id(int argc, char **argv)
{
	struct identity id;
	char err[256], fp[IDENTITY_FP_STRLEN];

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "-help") ||
	                 !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "punch id: unexpected argument '%s'\nTry 'punch id -help'.\n",
		        argv[1]);
		return EXIT_USAGE;
	}
	if (identity_load(&id, err, sizeof(err))) {
		fprintf(stderr, "punch id: %s\n", err);
		return 1;
	}
	identity_fp_str(id.fp, fp);
	if (id.created)
		fprintf(stderr, "Created a new identity key in %s/id_ed25519.pem\n",
		        id.dir);
	printf("%s\n", fp);
	identity_free(&id);
	return 0;
}
