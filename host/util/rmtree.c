#include "util/rmtree.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void sh_remove_tree(const char *dir)
{
    if (rmdir(dir) != 0 && errno != ENOENT)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
