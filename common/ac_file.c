#include "ac_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

ac_status ac_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size, ac_error *err)
{
    if (!path || !data || !size) return ac_fail(err, AC_ERR_NULL, "ac_read_file: path, data or size is NULL");
    *data = NULL;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says what it is. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ac_fail(err, AC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s: %s, not a regular file: refused", path, kind_of(st.st_mode));
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return ac_fail(err, AC_ERR_SHAPE, "%s: %lld bytes, more than the %zu this reader takes", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t want = (size_t)st.st_size;
    uint8_t *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory for %zu bytes", path, want);
    }
    size_t n = 0;
    while (n < want) {
        ssize_t k = read(fd, buf + n, want - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return ac_fail(err, AC_ERR_IO, "%s: read error: %s", path, strerror(e));
        }
        if (k == 0) break; /* shrank while reading: take what is there */
        n += (size_t)k;
    }
    /* Grew while reading: one byte more than fstat said means it is not the file we sized. */
    uint8_t extra;
    ssize_t more = read(fd, &extra, 1);
    close(fd);
    if (more > 0) {
        free(buf);
        return ac_fail(err, AC_ERR_IO, "%s: grew while being read: refused", path);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return AC_OK;
}

ac_status ac_mkdirs(const char *dir, ac_error *err)
{
    if (!dir || !dir[0]) return ac_fail(err, AC_ERR_NULL, "dir = NULL or empty: must name a folder");
    size_t n = strlen(dir);
    char *tmp = malloc(n + 1);
    if (!tmp) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory", dir);
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1;; p++) {
        int end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(tmp, 0777) && errno != EEXIST) {
                int e = errno;
                ac_fail(err, AC_ERR_IO, "%s: cannot create: %s", tmp, strerror(e));
                free(tmp);
                return AC_ERR_IO;
            }
            if (end) break;
            *p = '/';
        }
    }
    free(tmp);
    return AC_OK;
}
