/* PNG (ISO/IEC 15948) with a zlib stream (RFC 1950) of stored deflate blocks
 * (RFC 1951 section 3.2.4). Layout of the file:
 *   signature | IHDR | IDAT (one chunk: the whole zlib stream) | IEND
 * each chunk = length (BE32) | type | data | CRC-32 of type and data (BE32). */
#include "ac_png.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CRC-32, reflected polynomial 0xEDB88320, table built on first use. */
static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
    crc_ready = 1;
}

uint32_t ac_png_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    if (!crc_ready) crc_init();
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t ac_png_adler32(uint32_t adler, const uint8_t *data, size_t n)
{
    /* 65521: the largest prime below 2^16 (RFC 1950). Reducing every 5552
       bytes keeps b below 2^32 (the bound zlib derives: 255 n (n+1) / 2 +
       (n+1)(65520) < 2^32 for n = 5552). */
    uint32_t a = adler & 0xFFFF, b = adler >> 16;
    while (n) {
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        while (k--) {
            a += *data++;
            b += a;
        }
        a %= 65521u;
        b %= 65521u;
    }
    return (b << 16) | a;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One chunk; returns 0 on success. */
static int write_chunk(FILE *f, const char type[4], const uint8_t *data, size_t n)
{
    uint8_t head[8], tail[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uint32_t crc = ac_png_crc32(0, head + 4, 4);
    crc = ac_png_crc32(crc, data, n);
    put_be32(tail, crc);
    if (fwrite(head, 1, 8, f) != 8) return -1;
    if (n && fwrite(data, 1, n, f) != n) return -1;
    return fwrite(tail, 1, 4, f) == 4 ? 0 : -1;
}

ac_status ac_png_write_rgb(const char *path, int32_t width, int32_t height, const uint8_t *rgb, ac_error *err)
{
    if (!path) return ac_fail(err, AC_ERR_NULL, "path = NULL: must name the PNG file to write");
    if (!rgb) return ac_fail(err, AC_ERR_NULL, "rgb = NULL: must hold width * height * 3 bytes");
    if (width < 1 || width > AC_PNG_MAX_SIDE)
        return ac_fail(err, AC_ERR_SHAPE, "width = %d: must be in [1, %d]", (int)width, AC_PNG_MAX_SIDE);
    if (height < 1 || height > AC_PNG_MAX_SIDE)
        return ac_fail(err, AC_ERR_SHAPE, "height = %d: must be in [1, %d]", (int)height, AC_PNG_MAX_SIDE);

    /* The raw image: each scanline is its filter byte (0) and the pixels. */
    size_t line = 1 + (size_t)width * 3, raw_n = line * (size_t)height;
    /* zlib: 2 header bytes, 5 bytes per stored block of at most 65535, Adler-32. */
    size_t blocks = (raw_n + 65534) / 65535;
    size_t z_n = 2 + raw_n + 5 * blocks + 4;
    uint8_t *z = malloc(z_n);
    if (!z) return ac_fail(err, AC_ERR_NOMEM, "%s: %zu bytes for the image data: out of memory", path, z_n);
    /* CMF 0x78: deflate, 32K window; FLG 0x01 makes (CMF*256 + FLG) % 31 == 0,
       no dictionary, "fastest" level (nothing is compressed). */
    size_t at = 0;
    z[at++] = 0x78;
    z[at++] = 0x01;
    uint32_t adler = 1;
    size_t done = 0;
    /* Fill the stored blocks straight from the scanlines. */
    size_t row = 0, col = 0; /* position in the raw stream: row, byte in line */
    for (size_t b = 0; b < blocks; b++) {
        size_t len = raw_n - done < 65535 ? raw_n - done : 65535;
        z[at++] = (uint8_t)(b + 1 == blocks ? 1 : 0); /* BFINAL, BTYPE = 00 */
        z[at++] = (uint8_t)(len & 0xFF);
        z[at++] = (uint8_t)(len >> 8);
        z[at++] = (uint8_t)(~len & 0xFF);
        z[at++] = (uint8_t)((~len >> 8) & 0xFF);
        uint8_t *dst = z + at;
        size_t left = len;
        while (left) {
            if (col == 0) {
                *dst++ = 0; /* filter: none */
                col = 1;
                left--;
                continue;
            }
            size_t take = line - col < left ? line - col : left;
            memcpy(dst, rgb + row * (size_t)width * 3 + (col - 1), take);
            dst += take;
            left -= take;
            col += take;
            if (col == line) {
                col = 0;
                row++;
            }
        }
        adler = ac_png_adler32(adler, z + at, len);
        at += len;
        done += len;
    }
    put_be32(z + at, adler);
    at += 4;

    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bits per sample */
    ihdr[9] = 2;  /* colour type: truecolour (RGB) */
    ihdr[10] = 0; /* compression: deflate */
    ihdr[11] = 0; /* filter method 0 */
    ihdr[12] = 0; /* no interlace */
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        free(z);
        return ac_fail(err, AC_ERR_IO, "%s: cannot open for writing: %s", path, strerror(e));
    }
    int bad = fwrite(sig, 1, 8, f) != 8;
    bad = bad || write_chunk(f, "IHDR", ihdr, sizeof ihdr);
    bad = bad || write_chunk(f, "IDAT", z, at);
    bad = bad || write_chunk(f, "IEND", NULL, 0);
    int e = errno;
    bad = fclose(f) != 0 || bad;
    free(z);
    if (bad) return ac_fail(err, AC_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return AC_OK;
}
