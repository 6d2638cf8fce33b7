"""firecracker-python (PyPI) drives swiftvmm as it would drive Firecracker.

Run by ThirdPartyClientTests inside a private mount namespace where the library's fixed
paths are scratch directories: /usr/local/bin/firecracker (its MicroVMConfig.binary_path)
is a link to swiftvmm — the only change — and /var/lib/firecracker is empty.

The library's own code starts the VMM (ProcessManager.start: `firecracker --api-sock …
--id … --log-path …`), configures it through its Api resources, pauses and resumes it
(VMMManager.update_vmm_state), reads its state (VMMManager.get_vmm_state) and deletes it
(VMMManager.delete_vmm: stop the process, remove its files). Its NetworkManager sets up
the tap and NAT rules it always makes (delete_vmm tears them down). The VM gets that tap
through PUT /network-interfaces. MicroVM.create() itself is not used: it insists on a
Docker daemon and a root filesystem image (and then an SSH-able guest), which the probe
kernel is not.

Prints one line per step and "CLIENT-OK" at the end; any failure raises.
"""
import json
import os
import sys
import time

from firecracker.api import Api
from firecracker.config import MicroVMConfig
from firecracker.network import NetworkManager
from firecracker.process import ProcessManager
from firecracker.utils import generate_id
from firecracker.vmm import VMMManager

probe_kernel, disk = sys.argv[1], sys.argv[2]
config = MicroVMConfig()
assert os.path.realpath(config.binary_path).endswith("swiftvmm"), config.binary_path

vmm, proc = VMMManager(), ProcessManager()
vm_id = generate_id()
vm_dir = f"{config.data_path}/{vm_id}"
socket = vmm.socket_file(vm_id)
for path in (vm_dir, f"{vm_dir}/logs"):
    vmm.create_vmm_dir(path)
vmm.create_log_file(vm_id, f"{vm_id}.log")
network = NetworkManager()
network.setup(tap_name=f"tap_{vm_id}", iface_name=network.get_interface_name(),
              gateway_ip=network.get_gateway_ip("172.16.0.2"))
pid = None


def kill_vmm_on_failure(kind, value, tb):
    if pid and os.path.exists(f"/proc/{pid}"):
        os.kill(pid, 9)
    sys.__excepthook__(kind, value, tb)


sys.excepthook = kill_vmm_on_failure
pid = proc.start(vm_id, ["--api-sock", socket, "--id", vm_id, "--log-path", f"{vm_dir}/logs/{vm_id}.log"])
print(f"started pid={pid}")

api = Api(socket)
info = api.describe.get().json()
assert info["state"] == "Not started" and info["id"] == vm_id, info
response = api.network.put(iface_id="eth0", host_dev_name=f"tap_{vm_id}")
assert response.status_code == 204, response.text
print(f"network interface on tap_{vm_id} configured")
for call, kwargs in [
    (api.boot.put, dict(kernel_image_path=probe_kernel, boot_args="console=ttyS0 probe.count=0:10")),
    (api.drive.put, dict(drive_id="rootfs", path_on_host=disk, is_root_device=True, is_read_only=False)),
    (api.machine_config.put, dict(vcpu_count=1, mem_size_mib=64)),
    (api.actions.put, dict(action_type="InstanceStart")),
]:
    response = call(**kwargs)
    assert response.status_code == 204, (kwargs, response.status_code, response.text)
print("configured and started")
vmm.create_vmm_json_file(vm_id, Name="probe", Pid=pid, Kernel=probe_kernel, Rootfs=disk)

console = f"{vm_dir}/firecracker.log"


def counts():
    with open(console, errors="replace") as f:
        lines = f.read().splitlines()
    return [int(l[6:]) for l in lines[:-1] if l.startswith("count ") and l[6:].isdigit()]


def wait_for(predicate, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


assert wait_for(lambda: len(counts()) >= 2), open(console).read()
assert vmm.get_vmm_state(vm_id) == "Running"

vmm.update_vmm_state(vm_id, "Paused")
assert vmm.get_vmm_state(vm_id) == "Paused"
time.sleep(0.2)
at_pause = counts()
time.sleep(1)
assert counts() == at_pause, "the guest counted while paused"
print(f"paused at count {at_pause[-1]}")

vmm.update_vmm_state(vm_id, "Resumed")
assert vmm.get_vmm_state(vm_id) == "Running"
assert wait_for(lambda: len(counts()) >= len(at_pause) + 2), "the guest did not go on"
numbers = counts()
assert numbers == list(range(1, len(numbers) + 1)), numbers
print(f"resumed, count {numbers[-1]}")

config_json = api.vm_config.get().json()
assert config_json["machine-config"]["mem_size_mib"] == 64, config_json
assert config_json["drives"][0]["path_on_host"] == disk, config_json
api.close()

print(vmm.delete_vmm(vm_id))
assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", 10), "still running"
assert not os.path.exists(socket), "the socket was left behind"
assert not os.path.exists(vm_dir), "the VM's directory was left behind"
print("CLIENT-OK")
