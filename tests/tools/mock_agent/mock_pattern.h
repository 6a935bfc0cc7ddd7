/*
 * The bytes mock-agent's ReadStdout returns: a deterministic, printable pattern indexed by the
 * offset in the process's output stream, so a reader can check every byte it got, in order,
 * without any state but the count.
 */
#ifndef PP_MOCK_PATTERN_H
#define PP_MOCK_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MOCK_PATTERN_TEXT "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
#define MOCK_PATTERN_LEN (sizeof(MOCK_PATTERN_TEXT) - 1)

static inline uint8_t mock_pattern_byte(uint64_t offset)
{
	return (uint8_t)MOCK_PATTERN_TEXT[offset % MOCK_PATTERN_LEN];
}

/* Fills out[0..n) with the pattern from offset on, a period at a time (the benchmarks stream
 * gigabytes through this). */
static inline void mock_pattern_fill(uint8_t *out, size_t n, uint64_t offset)
{
	size_t k = (size_t)(offset % MOCK_PATTERN_LEN);

	while (n > 0) {
		size_t run = MOCK_PATTERN_LEN - k < n ? MOCK_PATTERN_LEN - k : n;

		memcpy(out, MOCK_PATTERN_TEXT + k, run);
		out += run;
		n -= run;
		k = 0;
	}
}

/* Returns the index of the first byte that differs, or n when all match. */
static inline size_t mock_pattern_check(const uint8_t *data, size_t n, uint64_t offset)
{
	size_t k = (size_t)(offset % MOCK_PATTERN_LEN), done = 0;

	while (done < n) {
		size_t run = MOCK_PATTERN_LEN - k < n - done ? MOCK_PATTERN_LEN - k : n - done;

		if (memcmp(data + done, MOCK_PATTERN_TEXT + k, run) != 0) {
			for (size_t i = 0; i < run; i++)
				if (data[done + i] != (uint8_t)MOCK_PATTERN_TEXT[k + i])
					return done + i;
		}
		done += run;
		k = 0;
	}
	return n;
}

#endif
