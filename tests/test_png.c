/* ac_png: write pictures, read the files back and check them byte by byte
 * with a decoder written here (its own bitwise CRC-32 and plain Adler-32, not
 * the writer's), then once more with python3's zlib when python3 is there. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ac_png.h"

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Bit at a time, straight from the definition (reflected 0xEDB88320). */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t adler_plain(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot read back %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static void pattern(uint8_t *rgb, int w, int h, uint32_t seed)
{
    uint32_t s = seed;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(s >> 24);
    }
}

/* Parses and checks everything; returns the number of stored blocks. */
static int check_file(const char *path, int w, int h, const uint8_t *rgb)
{
    size_t n;
    uint8_t *f = slurp(path, &n);
    static const uint8_t sig[8] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
    cr_assert(n > 8 && !memcmp(f, sig, 8), "PNG signature");
    size_t at = 8;
    uint8_t *idat = NULL;
    size_t idat_n = 0;
    int seen_ihdr = 0, seen_iend = 0, nchunks = 0;
    while (at + 12 <= n) {
        uint32_t len = be32(f + at);
        cr_assert(at + 12 + len <= n, "chunk %d runs past the file", nchunks);
        const uint8_t *type = f + at + 4, *data = f + at + 8;
        uint32_t crc = be32(f + at + 8 + len);
        cr_assert_eq(crc, crc_bitwise(type, 4 + len), "CRC of chunk %d (%.4s)", nchunks, (const char *)type);
        if (!memcmp(type, "IHDR", 4)) {
            cr_assert_eq(nchunks, 0, "IHDR comes first");
            cr_assert_eq(len, 13);
            cr_assert_eq(be32(data), (uint32_t)w, "width");
            cr_assert_eq(be32(data + 4), (uint32_t)h, "height");
            cr_assert_eq(data[8], 8, "bit depth");
            cr_assert_eq(data[9], 2, "colour type RGB");
            cr_assert_eq(data[10] | data[11] | data[12], 0, "compression, filter, interlace");
            seen_ihdr = 1;
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = realloc(idat, idat_n + len + 1);
            memcpy(idat + idat_n, data, len);
            idat_n += len;
        } else if (!memcmp(type, "IEND", 4)) {
            cr_assert_eq(len, 0);
            seen_iend = 1;
        }
        at += 12 + len;
        nchunks++;
        if (seen_iend) break;
    }
    cr_assert(seen_ihdr && seen_iend && idat, "IHDR, IDAT and IEND present");
    cr_assert_eq(at, n, "nothing after IEND");
    /* zlib header: deflate with a 32K window, check bits, no dictionary. */
    cr_assert_eq(idat[0] & 0x0F, 8);
    cr_assert_eq((idat[0] * 256 + idat[1]) % 31, 0);
    cr_assert_eq(idat[1] & 0x20, 0);
    /* Stored blocks only. */
    size_t line = 1 + (size_t)w * 3, raw_n = line * (size_t)h, got = 0, p = 2;
    uint8_t *raw = malloc(raw_n + 1);
    int final = 0, blocks = 0;
    while (!final) {
        cr_assert(p + 5 <= idat_n, "block header %d inside the stream", blocks);
        cr_assert_eq(idat[p] & 0xFE, 0, "block %d: BTYPE 00 and no stray bits", blocks);
        final = idat[p] & 1;
        uint32_t len = idat[p + 1] | (idat[p + 2] << 8), nlen = idat[p + 3] | (idat[p + 4] << 8);
        cr_assert_eq(len ^ 0xFFFFu, nlen, "block %d: NLEN is the complement of LEN", blocks);
        p += 5;
        cr_assert(p + len <= idat_n && got + len <= raw_n, "block %d fits", blocks);
        memcpy(raw + got, idat + p, len);
        got += len;
        p += len;
        blocks++;
    }
    cr_assert_eq(got, raw_n, "inflated size");
    cr_assert_eq(p + 4, idat_n, "Adler-32 ends the stream");
    cr_assert_eq(be32(idat + p), adler_plain(raw, raw_n), "Adler-32");
    for (int y = 0; y < h; y++) {
        cr_assert_eq(raw[y * line], 0, "row %d: filter byte 0", y);
        cr_assert(!memcmp(raw + y * line + 1, rgb + (size_t)y * w * 3, (size_t)w * 3), "row %d: pixels", y);
    }
    free(raw);
    free(idat);
    free(f);
    return blocks;
}

static void tmp_name(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/ac_test_png_%d_%s.png", (int)getpid(), tag);
}

Test(png, small_image_roundtrip)
{
    int w = 7, h = 5;
    uint8_t rgb[7 * 5 * 3];
    pattern(rgb, w, h, 1);
    char path[128];
    tmp_name(path, sizeof path, "small");
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, w, h, rgb, &e), AC_OK, "%s", e.msg);
    cr_assert_eq(check_file(path, w, h, rgb), 1);
    unlink(path);
}

Test(png, one_pixel)
{
    uint8_t rgb[3] = {255, 0, 128};
    char path[128];
    tmp_name(path, sizeof path, "one");
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, 1, 1, rgb, &e), AC_OK, "%s", e.msg);
    check_file(path, 1, 1, rgb);
    unlink(path);
}

/* 300 x 257: 231,557 raw bytes, so four stored blocks, and block edges fall
   inside scanlines. */
Test(png, many_blocks)
{
    int w = 300, h = 257;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    pattern(rgb, w, h, 7);
    char path[128];
    tmp_name(path, sizeof path, "big");
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, w, h, rgb, &e), AC_OK, "%s", e.msg);
    cr_assert_eq(check_file(path, w, h, rgb), 4);
    /* A second, independent decoder when python3 is around. */
    if (system("command -v python3 >/dev/null 2>&1") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import sys,zlib,struct\n"
                 "d=open(sys.argv[1],'rb').read(); p=8; z=b''\n"
                 "while p < len(d):\n"
                 "  n,=struct.unpack('>I',d[p:p+4]); t=d[p+4:p+8]\n"
                 "  assert struct.unpack('>I',d[p+8+n:p+12+n])[0]==zlib.crc32(d[p+4:p+8+n]), t\n"
                 "  z+= d[p+8:p+8+n] if t==b'IDAT' else b''; p+=12+n\n"
                 "r=zlib.decompress(z); w=%d; h=%d\n"
                 "assert len(r)==h*(1+3*w)\n"
                 "assert all(r[y*(1+3*w)]==0 for y in range(h))\n"
                 "print(zlib.crc32(b''.join(r[y*(1+3*w)+1:(y+1)*(1+3*w)] for y in range(h))))\" %s",
                 w, h, path);
        FILE *pp = popen(cmd, "r");
        cr_assert(pp);
        unsigned long py = 0;
        int ok = fscanf(pp, "%lu", &py) == 1;
        int rc = pclose(pp);
        cr_assert(ok && rc == 0, "python3 zlib could not read %s (rc %d)", path, rc);
        cr_assert_eq((uint32_t)py, crc_bitwise(rgb, (size_t)w * h * 3), "python3 zlib: pixels");
    }
    free(rgb);
    unlink(path);
}

Test(png, checksums_known_values)
{
    /* Standard check values: CRC-32("123456789") = 0xCBF43926,
       Adler-32("Wikipedia") = 0x11E60398. */
    cr_assert_eq(ac_png_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    cr_assert_eq(ac_png_adler32(1, (const uint8_t *)"Wikipedia", 9), 0x11E60398u);
    /* Continuation equals one pass; the Adler reduction point (5552) inside. */
    uint8_t buf[12000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0xFF;
    cr_assert_eq(ac_png_adler32(ac_png_adler32(1, buf, 5000), buf + 5000, 7000), adler_plain(buf, sizeof buf));
    cr_assert_eq(ac_png_crc32(ac_png_crc32(0, buf, 3), buf + 3, 100), crc_bitwise(buf, 103));
}

Test(png, bad_arguments_write_nothing)
{
    uint8_t rgb[12] = {0};
    char path[128];
    tmp_name(path, sizeof path, "bad");
    unlink(path);
    ac_error e;
    cr_assert_eq(ac_png_write_rgb(path, 0, 2, rgb, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "width = 0"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(path, 2, AC_PNG_MAX_SIDE + 1, rgb, &e), AC_ERR_SHAPE);
    cr_assert(strstr(e.msg, "height"), "%s", e.msg);
    cr_assert_eq(ac_png_write_rgb(path, 2, 2, NULL, &e), AC_ERR_NULL);
    cr_assert_eq(ac_png_write_rgb(NULL, 2, 2, rgb, &e), AC_ERR_NULL);
    cr_assert_eq(access(path, F_OK), -1, "nothing written on bad input");
    const char *nodir = "/nonexistent-ac-dir/x.png";
    cr_assert_eq(ac_png_write_rgb(nodir, 2, 2, rgb, &e), AC_ERR_IO);
    cr_assert(strstr(e.msg, nodir), "the message names the path: %s", e.msg);
}
