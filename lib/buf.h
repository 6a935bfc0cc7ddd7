/*
 * A growable byte buffer with a hard maximum size, for everything that accumulates input we do
 * not control (a response body, a frame, a file). Like curl's dynbuf, the maximum is a mandatory
 * argument: an append that would pass it fails and leaves the buffer unchanged.
 *
 * When data is not NULL, data[len] is a NUL byte (not counted in len), so text can be used as a
 * C string directly.
 */
#ifndef PP_BUF_H
#define PP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;  /* NULL until the first append */
	size_t len;     /* bytes used */
	size_t cap;     /* bytes allocated (including the NUL) */
	size_t max;     /* len never exceeds this */
};

#define BUF_INIT(m) { .data = NULL, .len = 0, .cap = 0, .max = (m) }

void buf_init(struct buf *b, size_t max);
/* Makes room for n more bytes. -1 with errno EMSGSIZE past max, ENOMEM if allocation fails. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *data, size_t n);
int buf_append_str(struct buf *b, const char *s);
/* printf into the buffer; -1 on a format error or past max (the buffer is unchanged). */
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (all of them when n >= len). */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer is empty and reusable with the same max. */
void buf_free(struct buf *b);
/* Hands the memory (NUL-terminated, never NULL) to the caller and empties the buffer.
 * ret_len may be NULL. */
uint8_t *buf_steal(struct buf *b, size_t *ret_len);

#endif
