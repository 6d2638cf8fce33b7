// The CKVM module's umbrella header. List every header here: clang's module cache
// notices an edit to this file, not a new file in the directory.
#include "ckvm.h"
#include "ckvm_host.h"
#include "ckvm_virtio.h"
#include "ckvm_inflate.h"
#include "ckvm_net.h"
#include "ckvm_state.h"
#include "ckvm_seccomp.h"
#include "ckvm_jail.h"
