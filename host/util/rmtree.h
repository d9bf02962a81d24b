/* Removing a directory a plugin wrote into (a worker's private directory, a call's), with all it holds. */
#ifndef SH_RMTREE_H
#define SH_RMTREE_H

/* Removes `dir` and everything below it, never following a symbolic link out of it. Most such directories are
 * empty, so it tries one rmdir before walking. Best effort: what cannot be removed stays. */
void sh_remove_tree(const char *dir);

#endif
