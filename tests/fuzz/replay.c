/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Plain driver for libFuzzer targets: feeds every file of the directories (or
 * files) given on the command line to LLVMFuzzerTestOneInput once. `make check`
 * uses it to replay the corpora under ASan+UBSan without needing clang.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "lockhub/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
        _cleanup_free_ uint8_t *buf = NULL;
        FILE *f;
        long n;

        f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "replay: %s: %m\n", path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -1;
        }
        buf = malloc(n > 0 ? (size_t) n : 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                fclose(f);
                return -1;
        }
        fclose(f);
        /* An exact-size heap copy, so ASan catches any read past the input. */
        LLVMFuzzerTestOneInput(buf, (size_t) n);
        return 0;
}

int main(int argc, char *argv[])
{
        unsigned files = 0, failed = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *d;
                struct dirent *de;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += run_file(argv[i]) < 0;
                        files++;
                        continue;
                }
                d = opendir(argv[i]);
                if (!d)
                        return EXIT_FAILURE;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *p = NULL;
                        if (de->d_name[0] == '.')
                                continue;
                        if (asprintf(&p, "%s/%s", argv[i], de->d_name) < 0)
                                return EXIT_FAILURE;
                        failed += run_file(p) < 0;
                        files++;
                }
                closedir(d);
        }
        printf("replay: %s: %u inputs, %u unreadable\n", argc > 1 ? argv[1] : "-", files, failed);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
