import KVMKit
