/* The in-memory store (registry_store.h): registry.c, answering at once. */
#include "registry_store.h"

static void mem_submit(void *store, struct reg_job *job)
{
	struct reg_outcome o = { 0 };

	o.result = registry_register(store, &job->p,
	                             (const struct sockaddr *)&job->from,
	                             job->sock, job->now_ms, &o.self, &o.peer);
	job->done(job, &o);
}

static void mem_release(void *store, const char *id,
                        const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	registry_remove(store, id, fp, now_ms);
}

const struct reg_store_ops registry_mem_ops = {
	.name = "memory",
	.submit = mem_submit,
	.release = mem_release,
};
