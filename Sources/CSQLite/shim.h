#ifndef POSSYNC_CSQLITE_SHIM_H
#define POSSYNC_CSQLITE_SHIM_H

// The system SQLite (libsqlite3-dev), for possync-bench's side-by-side rows
// only: no library target depends on it.
#include <sqlite3.h>

#endif
