#include "known_servers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "identity.h"

static const char file_name[] = "known_servers";

void known_servers_path(const char *dir, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", dir, file_name);
}

int known_servers_parse_line(const char *line, size_t len,
                             char name[KNOWN_SERVER_NAME_MAX + 1],
                             uint8_t fp[32])
{
	char fps[IDENTITY_FP_STRLEN];
	size_t i = 0, s, n;

	if (len && line[len - 1] == '\r')
		len--;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#')
		return 0;
	for (s = i; i < len && line[i] != ' ' && line[i] != '\t'; i++)
		if ((unsigned char)line[i] < 0x21 || line[i] == 0x7F)
			return -1;
	if ((n = i - s) > KNOWN_SERVER_NAME_MAX)
		return -1;
	memcpy(name, line + s, n);
	name[n] = '\0';
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	for (s = i; i < len && line[i] != ' ' && line[i] != '\t'; i++)
		;
	if ((n = i - s) == 0 || n >= sizeof(fps))
		return -1;
	memcpy(fps, line + s, n);
	fps[n] = '\0';
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i != len || identity_fp_parse(fps, fp))
		return -1;
	return 1;
}

int known_servers_check(const char *dir, const char *server, uint8_t fp[32],
                        int *line)
{
	char path[IDENTITY_PATH_MAX + 32], buf[KNOWN_SERVERS_LINE_MAX];
	char name[KNOWN_SERVER_NAME_MAX + 1];
	uint8_t f[32];
	int n = 0, rc = KNOWN_SERVER_NONE;
	FILE *fh;

	known_servers_path(dir, path, sizeof(path));
	if (!(fh = fopen(path, "r")))
		return errno == ENOENT ? KNOWN_SERVER_NONE : KNOWN_SERVER_ERROR;
	while (n < KNOWN_SERVERS_LINES_MAX && fgets(buf, sizeof(buf), fh)) {
		size_t len = strcspn(buf, "\n");
		int r;

		n++;
		r = known_servers_parse_line(buf, len, name, f);
		if (r == -1) {
			/* a malformed line is the server's only if it names it */
			size_t k = strlen(server);

			if (!strncmp(buf, server, k) &&
			    (buf[k] == ' ' || buf[k] == '\t')) {
				*line = n;
				rc = KNOWN_SERVER_BAD;
				break;
			}
			continue;
		}
		if (r == 1 && !strcmp(name, server)) {
			memcpy(fp, f, sizeof(f));
			*line = n;
			rc = KNOWN_SERVER_FOUND;
			break;
		}
	}
	fclose(fh);
	return rc;
}

int known_servers_add(const char *dir, const char *server,
                      const uint8_t fp[32])
{
	char path[IDENTITY_PATH_MAX + 32], fps[IDENTITY_FP_STRLEN];
	FILE *f;
	int rc;

	known_servers_path(dir, path, sizeof(path));
	if (!(f = fopen(path, "a")))
		return -1;
	identity_fp_str(fp, fps);
	rc = fprintf(f, "%s %s\n", server, fps) < 0;
	return (fclose(f) || rc) ? -1 : 0;
}
