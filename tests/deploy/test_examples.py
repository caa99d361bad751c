"""The deployment examples of deploy/, checked as their platforms would and then run.

- deploy/ecs/task-definition.json: every field against what ECS's RegisterTaskDefinition
  accepts for a Fargate task (names, types, ranges, cross references), then what a
  ringside sidecar needs (the health check is `ringside probe` on the command's --admin,
  the app depends on the sidecar being HEALTHY, the ingress port mapped, the CA files on
  a mount, stop time beyond the drain);
- deploy/kubernetes/pod.yaml: parsed (python3-yaml) and checked against the Pod fields
  of the core/v1 API, then ringside as a native sidecar (init container, restartPolicy
  Always), its probes, its projected certificate volume;
- deploy/systemd/ringside.service: `systemd-analyze verify` with no complaint, the
  hardening the unit promises, and `systemd-analyze security` rating it OK.

The checkers are proven to fail on broken copies of the examples. Then each example's
own ringside command line and health check are run, each in a network namespace of its
own (the examples' fixed ports): ECS's and the pod's from the image's root with their
files where the example puts them (the pod's in the kubelet's ..data symlink layout),
the unit's as a user that is not root with only CAP_NET_BIND_SERVICE (port 443)."""

import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import unittest

import image_root
from image_root import harness
from harness import SERVICE

DEPLOY = os.path.join(image_root.REPO, "deploy")
ECS_TASK = os.path.join(DEPLOY, "ecs", "task-definition.json")
POD = os.path.join(DEPLOY, "kubernetes", "pod.yaml")
UNIT = os.path.join(DEPLOY, "systemd", "ringside.service")
ENTRYPOINT = "/usr/bin/ringside"  # the image's, tools/image.sh
DEFAULT_ADMIN = "127.0.0.1:9901"


def flag_values(args, name):
    """The values of --name in an argv, in both spellings (--name V and --name=V)."""
    values = []
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
    return values


def flag_value(args, name, default=None):
    values = flag_values(args, name)
    return values[-1] if values else default


def seconds(duration):
    """ringside's durations ("2s", "500ms", "1m") in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", duration)
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def ingress_ports(args):
    return [int(spec.split("=", 1)[0].rsplit(":", 1)[1]) for spec in flag_values(args, "ingress")]


def check_probe(problems, where, command, args, time_limit):
    """A health check command must be `ringside probe` asking the sidecar's admin address,
    with its own timeout inside the platform's."""
    if command[:2] != [ENTRYPOINT, "probe"]:
        problems.append(f"{where}: {command} is not `{ENTRYPOINT} probe`")
        return
    admin = flag_value(command, "admin", DEFAULT_ADMIN)
    if admin != flag_value(args, "admin", DEFAULT_ADMIN):
        problems.append(f"{where}: probes {admin}, the sidecar's --admin is "
                        f"{flag_value(args, 'admin', DEFAULT_ADMIN)}")
    if seconds(flag_value(command, "timeout", "2s")) >= time_limit:
        problems.append(f"{where}: the probe's --timeout is not inside the platform's "
                        f"timeout ({time_limit} s)")


# ---------------------------------------------------------------------------------------
# ECS: the fields of RegisterTaskDefinition (API reference, ContainerDefinition,
# HealthCheck, PortMapping, ...), as a Fargate task in awsvpc mode takes them.

ECS_TASK_FIELDS = {
    "family": str, "taskRoleArn": str, "executionRoleArn": str, "networkMode": str,
    "containerDefinitions": list, "volumes": list, "placementConstraints": list,
    "requiresCompatibilities": list, "cpu": str, "memory": str, "tags": list, "pidMode": str,
    "ipcMode": str, "proxyConfiguration": dict, "inferenceAccelerators": list,
    "ephemeralStorage": dict, "runtimePlatform": dict, "enableFaultInjection": bool}
ECS_CONTAINER_FIELDS = {
    "name": str, "image": str, "repositoryCredentials": dict, "cpu": int, "memory": int,
    "memoryReservation": int, "links": list, "portMappings": list, "essential": bool,
    "restartPolicy": dict, "entryPoint": list, "command": list, "environment": list,
    "environmentFiles": list, "mountPoints": list, "volumesFrom": list,
    "linuxParameters": dict, "secrets": list, "dependsOn": list, "startTimeout": int,
    "stopTimeout": int, "versionConsistency": str, "hostname": str, "user": str,
    "workingDirectory": str, "disableNetworking": bool, "privileged": bool,
    "readonlyRootFilesystem": bool, "dnsServers": list, "dnsSearchDomains": list,
    "extraHosts": list, "dockerSecurityOptions": list, "interactive": bool,
    "pseudoTerminal": bool, "dockerLabels": dict, "ulimits": list, "logConfiguration": dict,
    "healthCheck": dict, "systemControls": list, "resourceRequirements": list,
    "firelensConfiguration": dict, "credentialSpecs": list}
ECS_PORT_FIELDS = {"containerPort": int, "hostPort": int, "protocol": str, "name": str,
                   "appProtocol": str, "containerPortRange": str}
ECS_HEALTH_FIELDS = {"command": list, "interval": int, "timeout": int, "retries": int,
                     "startPeriod": int}
ECS_HEALTH_RANGES = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10),
                     "startPeriod": (0, 300)}
ECS_MOUNT_FIELDS = {"sourceVolume": str, "containerPath": str, "readOnly": bool}
ECS_VOLUME_FIELDS = {"name": str, "host": dict, "dockerVolumeConfiguration": dict,
                     "efsVolumeConfiguration": dict, "configuredAtLaunch": bool,
                     "fsxWindowsFileServerVolumeConfiguration": dict}
ECS_EFS_FIELDS = {"fileSystemId": str, "rootDirectory": str, "transitEncryption": str,
                  "transitEncryptionPort": int, "authorizationConfig": dict}
ECS_LINUX_FIELDS = {"capabilities": dict, "devices": list, "initProcessEnabled": bool,
                    "sharedMemorySize": int, "tmpfs": list, "maxSwap": int, "swappiness": int}
ECS_ULIMIT_NAMES = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                    "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}
# Fargate's task sizes: cpu units -> memory MiB it allows.
FARGATE_SIZES = {"256": {512, 1024, 2048}, "512": set(range(1024, 4097, 1024)),
                 "1024": set(range(2048, 8193, 1024)), "2048": set(range(4096, 16385, 1024)),
                 "4096": set(range(8192, 30721, 1024))}


def check_fields(problems, where, value, fields):
    if not isinstance(value, dict):
        problems.append(f"{where}: not an object")
        return
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{where}: unknown field {key!r}")
        elif not isinstance(item, fields[key]) or (fields[key] is int and isinstance(item, bool)):
            problems.append(f"{where}.{key}: {type(item).__name__}, expected "
                            f"{fields[key].__name__}")


def ecs_problems(task):
    """What ECS would refuse in a Fargate task definition, and what a ringside sidecar
    in it would miss. [] when none."""
    problems = []
    check_fields(problems, "task", task, ECS_TASK_FIELDS)
    for key in ("family", "containerDefinitions"):
        if key not in task:
            problems.append(f"task: {key} is required")
    if task.get("requiresCompatibilities") != ["FARGATE"] or task.get("networkMode") != "awsvpc":
        problems.append("task: a Fargate task (requiresCompatibilities [FARGATE], awsvpc)")
    if int(task.get("memory", 0)) not in FARGATE_SIZES.get(task.get("cpu"), set()):
        problems.append(f"task: cpu {task.get('cpu')} with memory {task.get('memory')} is "
                        f"not a Fargate size")
    volumes = {}
    for v in task.get("volumes", []):
        check_fields(problems, f"volume {v.get('name')}", v, ECS_VOLUME_FIELDS)
        volumes[v.get("name")] = v
        if "host" in v and v["host"].get("sourcePath"):
            problems.append(f"volume {v.get('name')}: host.sourcePath is not on Fargate")
        efs = v.get("efsVolumeConfiguration")
        if efs is not None:
            check_fields(problems, f"volume {v.get('name')}.efs", efs, ECS_EFS_FIELDS)
            if "fileSystemId" not in efs:
                problems.append(f"volume {v.get('name')}: efs needs fileSystemId")
            if (efs.get("authorizationConfig", {}).get("iam") == "ENABLED"
                    and efs.get("transitEncryption") != "ENABLED"):
                problems.append(f"volume {v.get('name')}: IAM authorization needs "
                                f"transitEncryption ENABLED")
            if (efs.get("authorizationConfig", {}).get("iam") == "ENABLED"
                    and "taskRoleArn" not in task):
                problems.append(f"volume {v.get('name')}: IAM authorization needs taskRoleArn")

    containers = {}
    for c in task.get("containerDefinitions", []):
        name = c.get("name", "?")
        check_fields(problems, f"container {name}", c, ECS_CONTAINER_FIELDS)
        for key in ("name", "image"):
            if key not in c:
                problems.append(f"container {name}: {key} is required")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name) or name in containers:
            problems.append(f"container {name}: bad or repeated name")
        containers[name] = c
        for p in c.get("portMappings", []):
            check_fields(problems, f"container {name} portMapping", p, ECS_PORT_FIELDS)
            if "hostPort" in p and p["hostPort"] != p.get("containerPort"):
                problems.append(f"container {name}: awsvpc needs hostPort == containerPort")
            if p.get("protocol", "tcp") not in ("tcp", "udp"):
                problems.append(f"container {name}: protocol {p.get('protocol')}")
            if p.get("appProtocol", "http") not in ("http", "http2", "grpc"):
                problems.append(f"container {name}: appProtocol {p.get('appProtocol')}")
        health = c.get("healthCheck")
        if health is not None:
            check_fields(problems, f"container {name} healthCheck", health, ECS_HEALTH_FIELDS)
            if not health.get("command") or health["command"][0] not in ("CMD", "CMD-SHELL"):
                problems.append(f"container {name}: healthCheck.command starts with CMD or "
                                f"CMD-SHELL")
            for key, (low, high) in ECS_HEALTH_RANGES.items():
                if key in health and not low <= health[key] <= high:
                    problems.append(f"container {name}: healthCheck.{key} {health[key]} not "
                                    f"in {low}..{high}")
        for m in c.get("mountPoints", []):
            check_fields(problems, f"container {name} mountPoint", m, ECS_MOUNT_FIELDS)
            if m.get("sourceVolume") not in volumes:
                problems.append(f"container {name}: mount of unknown volume "
                                f"{m.get('sourceVolume')}")
        linux = c.get("linuxParameters", {})
        check_fields(problems, f"container {name} linuxParameters", linux, ECS_LINUX_FIELDS)
        if set(linux.get("capabilities", {}).get("add", [])) - {"SYS_PTRACE"}:
            problems.append(f"container {name}: Fargate adds no capability but SYS_PTRACE")
        for key in ("devices", "tmpfs", "maxSwap", "swappiness", "sharedMemorySize"):
            if key in linux:
                problems.append(f"container {name}: linuxParameters.{key} is not on Fargate")
        if c.get("privileged"):
            problems.append(f"container {name}: privileged is not on Fargate")
        for u in c.get("ulimits", []):
            if u.get("name") not in ECS_ULIMIT_NAMES or not isinstance(u.get("softLimit"), int) \
                    or not isinstance(u.get("hardLimit"), int) or u["softLimit"] > u["hardLimit"]:
                problems.append(f"container {name}: bad ulimit {u}")
        log = c.get("logConfiguration")
        if log is None or log.get("logDriver") not in ("awslogs", "splunk", "awsfirelens"):
            problems.append(f"container {name}: logConfiguration with a Fargate log driver")
        elif log["logDriver"] == "awslogs":
            missing = {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} - set(
                log.get("options", {}))
            if missing:
                problems.append(f"container {name}: awslogs needs {sorted(missing)}")
    if not any(c.get("essential", True) for c in containers.values()):
        problems.append("task: no essential container")
    for name, c in containers.items():
        for d in c.get("dependsOn", []):
            target = containers.get(d.get("containerName"))
            if target is None:
                problems.append(f"container {name}: depends on unknown {d.get('containerName')}")
            elif d.get("condition") not in ("START", "COMPLETE", "SUCCESS", "HEALTHY"):
                problems.append(f"container {name}: dependsOn condition {d.get('condition')}")
            elif d["condition"] == "HEALTHY" and "healthCheck" not in target:
                problems.append(f"container {name}: HEALTHY on {d['containerName']}, which has "
                                f"no healthCheck")

    # The sidecar.
    sidecar = containers.get("ringside")
    if sidecar is None:
        return problems + ["task: no container named ringside"]
    if sidecar.get("entryPoint", [ENTRYPOINT]) != [ENTRYPOINT]:
        problems.append("ringside: entryPoint is the image's, /usr/bin/ringside")
    args = sidecar.get("command", [])
    health = sidecar.get("healthCheck", {})
    if health.get("command", [""])[0] != "CMD":
        problems.append("ringside: the image has no shell: healthCheck.command is CMD")
    else:
        check_probe(problems, "ringside healthCheck", health["command"][1:], args,
                    health.get("timeout", 5))
    mapped = {p.get("containerPort") for p in sidecar.get("portMappings", [])}
    for port in ingress_ports(args):
        if port not in mapped:
            problems.append(f"ringside: ingress port {port} has no portMapping")
    mounts = [(m["containerPath"].rstrip("/") + "/", m.get("readOnly", False))
              for m in sidecar.get("mountPoints", []) if "containerPath" in m]
    for flag in ("ca-cert", "ca-key", "trust", "cert", "key"):
        for path in flag_values(args, flag):
            if not any(path.startswith(prefix) for prefix, _ in mounts):
                problems.append(f"ringside: --{flag} {path} is on no volume")
    for path in flag_values(args, "cert-dir"):
        if any((path + "/").startswith(prefix) and ro for prefix, ro in mounts):
            problems.append(f"ringside: --cert-dir {path} is on a read-only volume")
    if sidecar.get("stopTimeout", 30) <= seconds(flag_value(args, "drain-timeout", "20s")):
        problems.append("ringside: stopTimeout does not leave room for --drain-timeout")
    others = [n for n in containers if n != "ringside" and containers[n].get("essential", True)]
    for name in others:
        if {"containerName": "ringside", "condition": "HEALTHY"} not in \
                containers[name].get("dependsOn", []):
            problems.append(f"container {name}: does not wait for ringside to be HEALTHY")
    return problems


# ---------------------------------------------------------------------------------------
# Kubernetes: core/v1 Pod fields (API reference), and the native sidecar.

K8S_POD_FIELDS = {"apiVersion": str, "kind": str, "metadata": dict, "spec": dict}
K8S_METADATA_FIELDS = {"name": str, "namespace": str, "labels": dict, "annotations": dict}
K8S_SPEC_FIELDS = {
    "activeDeadlineSeconds": int, "affinity": dict, "automountServiceAccountToken": bool,
    "containers": list, "dnsConfig": dict, "dnsPolicy": str, "enableServiceLinks": bool,
    "ephemeralContainers": list, "hostAliases": list, "hostIPC": bool, "hostNetwork": bool,
    "hostPID": bool, "hostUsers": bool, "hostname": str, "imagePullSecrets": list,
    "initContainers": list, "nodeName": str, "nodeSelector": dict, "os": dict,
    "overhead": dict, "preemptionPolicy": str, "priority": int, "priorityClassName": str,
    "readinessGates": list, "resourceClaims": list, "restartPolicy": str,
    "runtimeClassName": str, "schedulerName": str, "schedulingGates": list,
    "securityContext": dict, "serviceAccountName": str, "setHostnameAsFQDN": bool,
    "shareProcessNamespace": bool, "subdomain": str, "terminationGracePeriodSeconds": int,
    "tolerations": list, "topologySpreadConstraints": list, "volumes": list}
K8S_CONTAINER_FIELDS = {
    "args": list, "command": list, "env": list, "envFrom": list, "image": str,
    "imagePullPolicy": str, "lifecycle": dict, "livenessProbe": dict, "name": str,
    "ports": list, "readinessProbe": dict, "resizePolicy": list, "resources": dict,
    "restartPolicy": str, "securityContext": dict, "startupProbe": dict, "stdin": bool,
    "stdinOnce": bool, "terminationMessagePath": str, "terminationMessagePolicy": str,
    "tty": bool, "volumeDevices": list, "volumeMounts": list, "workingDir": str}
K8S_PROBE_FIELDS = {"exec": dict, "failureThreshold": int, "grpc": dict, "httpGet": dict,
                    "initialDelaySeconds": int, "periodSeconds": int, "successThreshold": int,
                    "tcpSocket": dict, "terminationGracePeriodSeconds": int,
                    "timeoutSeconds": int}
K8S_CONTAINER_SECURITY_FIELDS = {
    "allowPrivilegeEscalation": bool, "appArmorProfile": dict, "capabilities": dict,
    "privileged": bool, "procMount": str, "readOnlyRootFilesystem": bool, "runAsGroup": int,
    "runAsNonRoot": bool, "runAsUser": int, "seLinuxOptions": dict, "seccompProfile": dict}
K8S_POD_SECURITY_FIELDS = {
    "appArmorProfile": dict, "fsGroup": int, "fsGroupChangePolicy": str, "runAsGroup": int,
    "runAsNonRoot": bool, "runAsUser": int, "seLinuxOptions": dict, "seccompProfile": dict,
    "supplementalGroups": list, "sysctls": list}
K8S_PORT_FIELDS = {"containerPort": int, "hostIP": str, "hostPort": int, "name": str,
                   "protocol": str}
K8S_MOUNT_FIELDS = {"mountPath": str, "mountPropagation": str, "name": str, "readOnly": bool,
                    "subPath": str, "subPathExpr": str}
K8S_PROJECTION_FIELDS = {"name": str, "items": list, "optional": bool}
K8S_ITEM_FIELDS = {"key": str, "path": str, "mode": int}


def pod_problems(pod):
    """What the API server would refuse in the Pod, and what the native ringside sidecar
    would miss. [] when none."""
    problems = []
    check_fields(problems, "pod", pod, K8S_POD_FIELDS)
    if (pod.get("apiVersion"), pod.get("kind")) != ("v1", "Pod"):
        problems.append("pod: apiVersion v1, kind Pod")
    check_fields(problems, "metadata", pod.get("metadata", {}), K8S_METADATA_FIELDS)
    spec = pod.get("spec", {})
    check_fields(problems, "spec", spec, K8S_SPEC_FIELDS)
    check_fields(problems, "spec.securityContext", spec.get("securityContext", {}),
                 K8S_POD_SECURITY_FIELDS)
    volumes = {v.get("name"): v for v in spec.get("volumes", [])}
    all_containers = spec.get("initContainers", []) + spec.get("containers", [])
    names = [c.get("name") for c in all_containers]
    if len(set(names)) != len(names) or not spec.get("containers"):
        problems.append("spec: container names repeat, or no containers")
    for c in all_containers:
        name = c.get("name", "?")
        check_fields(problems, f"container {name}", c, K8S_CONTAINER_FIELDS)
        if not c.get("image"):
            problems.append(f"container {name}: image is required")
        check_fields(problems, f"container {name} securityContext", c.get("securityContext", {}),
                     K8S_CONTAINER_SECURITY_FIELDS)
        for p in c.get("ports", []):
            check_fields(problems, f"container {name} port", p, K8S_PORT_FIELDS)
        for m in c.get("volumeMounts", []):
            check_fields(problems, f"container {name} volumeMount", m, K8S_MOUNT_FIELDS)
            if m.get("name") not in volumes:
                problems.append(f"container {name}: mount of unknown volume {m.get('name')}")
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in c:
                check_fields(problems, f"container {name} {kind}", c[kind], K8S_PROBE_FIELDS)
    for c in spec.get("containers", []):
        if "restartPolicy" in c:
            problems.append(f"container {c.get('name')}: restartPolicy is for init containers")
    for v in volumes.values():
        for source in v.get("projected", {}).get("sources", []):
            for kind, projection in source.items():
                if kind not in ("secret", "configMap", "downwardAPI", "serviceAccountToken",
                                "clusterTrustBundle"):
                    problems.append(f"volume {v.get('name')}: unknown projection {kind}")
                elif kind in ("secret", "configMap"):
                    check_fields(problems, f"volume {v.get('name')} {kind}", projection,
                                 K8S_PROJECTION_FIELDS)
                    for item in projection.get("items", []):
                        check_fields(problems, f"volume {v.get('name')} item", item,
                                     K8S_ITEM_FIELDS)

    # The native sidecar.
    sidecars = [c for c in spec.get("initContainers", []) if c.get("name") == "ringside"]
    if len(sidecars) != 1 or sidecars[0].get("restartPolicy") != "Always":
        return problems + ["ringside: one init container with restartPolicy: Always"]
    sidecar = sidecars[0]
    if "command" in sidecar and sidecar["command"] != [ENTRYPOINT]:
        problems.append("ringside: command is the image's entrypoint, /usr/bin/ringside")
    args = sidecar.get("args", [])
    for kind in ("startupProbe", "readinessProbe"):
        probe = sidecar.get(kind)
        if probe is None or "exec" not in probe:
            problems.append(f"ringside: no exec {kind}")
            continue
        check_probe(problems, f"ringside {kind}", probe["exec"].get("command", []), args,
                    probe.get("timeoutSeconds", 1))
    if "livenessProbe" in sidecar:
        problems.append("ringside: a liveness probe would kill a draining sidecar")
    ports = {p.get("containerPort") for p in sidecar.get("ports", [])}
    for port in ingress_ports(args):
        if port not in ports:
            problems.append(f"ringside: ingress port {port} is not among its ports")
    security = sidecar.get("securityContext", {})
    if security.get("runAsUser", 65532) == 0 or security.get("allowPrivilegeEscalation", True):
        problems.append("ringside: runs as root or may escalate")
    mounts = {m["mountPath"].rstrip("/"): m.get("name") for m in sidecar.get("volumeMounts", [])}
    for flag in ("cert", "key", "trust"):
        for path in flag_values(args, flag):
            folder, file_name = path.rsplit("/", 1)
            volume = volumes.get(mounts.get(folder), {})
            paths = [item.get("path") for source in volume.get("projected", {}).get("sources", [])
                     for projection in source.values() for item in projection.get("items", [])]
            if file_name not in paths:
                problems.append(f"ringside: --{flag} {path} is not in a projected volume")
    return problems


def load_pod():
    try:
        import yaml
    except ImportError:
        harness.missing_python_package("python3-yaml")
    with open(POD) as f:
        return yaml.safe_load(f)


def load_task():
    with open(ECS_TASK) as f:
        return json.load(f)


def unit_exec(directive):
    """The command lines of a directive of the unit (ExecStart=, ...), continuation lines
    joined, as argv lists."""
    with open(UNIT) as f:
        text = f.read().replace("\\\n", " ")
    return [shlex.split(line.split("=", 1)[1]) for line in text.splitlines()
            if line.startswith(directive + "=")]


def unit_settings():
    settings = {}
    with open(UNIT) as f:
        for line in f:
            if "=" in line and not line.startswith(("#", " ")):
                key, value = line.rstrip("\n").split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


class StructureTest(unittest.TestCase):
    """The checkers on the examples, and on broken copies (they must fail)."""

    def test_ecs_task_definition(self):
        self.assertEqual(ecs_problems(load_task()), [])

    def test_ecs_checker_finds_mistakes(self):
        task = load_task()
        sidecar = next(c for c in task["containerDefinitions"] if c["name"] == "ringside")
        app = next(c for c in task["containerDefinitions"] if c["name"] == "app")
        breakages = {
            "unknown field": lambda t: sidecar.__setitem__("healthcheck", {}),
            "in 5..300": lambda t: sidecar["healthCheck"].__setitem__("interval", 1),
            "is not `/usr/bin/ringside probe`":
                lambda t: sidecar["healthCheck"].__setitem__("command", ["CMD", "curl", "x"]),
            "probes 127.0.0.1:9902": lambda t: sidecar["healthCheck"]["command"].__setitem__(
                4, "127.0.0.1:9902"),
            "does not wait for ringside": lambda t: app.__setitem__("dependsOn", []),
            "has no portMapping": lambda t: sidecar.__setitem__("portMappings", []),
            "is on no volume": lambda t: sidecar.__setitem__("mountPoints", []),
            "not a Fargate size": lambda t: t.__setitem__("memory", "300"),
            "room for --drain-timeout": lambda t: sidecar.__setitem__("stopTimeout", 10),
        }
        for expected, breakage in breakages.items():
            broken = copy.deepcopy(task)
            sidecar = next(c for c in broken["containerDefinitions"] if c["name"] == "ringside")
            app = next(c for c in broken["containerDefinitions"] if c["name"] == "app")
            breakage(broken)
            found = ecs_problems(broken)
            self.assertTrue(any(expected in p for p in found), f"{expected}: {found}")

    def test_kubernetes_pod(self):
        self.assertEqual(pod_problems(load_pod()), [])

    def test_kubernetes_checker_finds_mistakes(self):
        pod = load_pod()

        def sidecar(p):
            return p["spec"]["initContainers"][0]
        breakages = {
            "unknown field": lambda p: sidecar(p).__setitem__("readinesProbe", {}),
            "restartPolicy: Always": lambda p: sidecar(p).pop("restartPolicy"),
            "no exec startupProbe": lambda p: sidecar(p).pop("startupProbe"),
            "inside the platform's timeout":
                lambda p: sidecar(p)["readinessProbe"].__setitem__("timeoutSeconds", 1),
            "is not in a projected volume":
                lambda p: p["spec"]["volumes"][0]["projected"]["sources"].pop(1),
            "liveness probe": lambda p: sidecar(p).__setitem__("livenessProbe",
                                                               sidecar(p)["readinessProbe"]),
            "unknown volume": lambda p: p["spec"].pop("volumes"),
        }
        for expected, breakage in breakages.items():
            broken = copy.deepcopy(pod)
            breakage(broken)
            found = pod_problems(broken)
            self.assertTrue(any(expected in p for p in found), f"{expected}: {found}")

    def verify_unit(self, unit_text):
        """systemd-analyze verify on the unit with its ringside path pointing at this
        build's binary (verify insists that the executables exist): its complaints."""
        tool = harness.require_tool("systemd-analyze")
        folder = tempfile.mkdtemp(prefix="ringside-unit-")
        try:
            path = os.path.join(folder, "ringside.service")
            with open(path, "w") as f:
                f.write(unit_text.replace("/usr/local/bin/ringside", harness.binary("ringside")))
            done = subprocess.run([tool, "verify", "--man=no", path], capture_output=True,
                                  text=True, timeout=60)
            security = subprocess.run([tool, "security", "--offline=true", path],
                                      capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return done.returncode, (done.stdout + done.stderr).strip(), security.stdout

    def test_systemd_unit(self):
        with open(UNIT) as f:
            text = f.read()
        status, complaints, security = self.verify_unit(text)
        self.assertEqual((status, complaints), (0, ""))
        exposure = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", security)
        self.assertIsNotNone(exposure, security)
        print(f"systemd-analyze security: exposure {exposure.group(1)} {exposure.group(2)}",
              flush=True)
        self.assertLessEqual(float(exposure.group(1)), 2.0, security)
        settings = unit_settings()
        for key, value in {"DynamicUser": "yes", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
                           "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                           "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                           "StateDirectory": "ringside", "RuntimeDirectory": "ringside"}.items():
            self.assertEqual(settings.get(key), [value], key)
        [start] = unit_exec("ExecStart")
        self.assertEqual(flag_value(start, "cert-dir"), "${STATE_DIRECTORY}")
        [post] = unit_exec("ExecStartPost")
        problems = []
        check_probe(problems, "ExecStartPost", ["/usr/bin/ringside", *post[1:]], start, 25)
        self.assertEqual(problems, [])
        self.assertEqual(post[:2], [start[0], "probe"])

    def test_systemd_verify_finds_mistakes(self):
        with open(UNIT) as f:
            text = f.read()
        status, complaints, _ = self.verify_unit(text.replace("ProtectHome=", "ProtectHom="))
        self.assertIn("Unknown key 'ProtectHom'", complaints)


class RunTest(image_root.ImageCase):
    """Each example's own command line and health check, run."""

    def run_until_healthy(self, name, argv, health_argv, timeout=15):
        """Starts argv, runs health_argv(pid) until it exits 0; then SIGTERM must drain
        and end the process with 0."""
        proc = self.start(name, argv)
        last = [None]

        def healthy():
            if proc.poll() is not None:
                return True
            last[0] = subprocess.run(health_argv(proc.pid), capture_output=True, text=True,
                                     timeout=30)
            return last[0].returncode == 0
        if not harness.wait_until(healthy, timeout=timeout, interval=0.2) or proc.poll() is not None:
            self.fail_with_diag(f"{name}: the example's health check never passed: "
                                f"{last[0] and (last[0].stdout + last[0].stderr)}")
        self.assertRegex(last[0].stdout, r"^ready: 127\.0\.0\.1:\d+ answered 200 ready\n$")
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=25), 0, self.diag())
        return proc

    def test_ecs_sidecar_from_the_image(self):
        task = load_task()
        sidecar = next(c for c in task["containerDefinitions"] if c["name"] == "ringside")
        args = sidecar["command"]
        ca_dir = self.ca_dir
        self.image.put(flag_value(args, "ca-cert"), source=os.path.join(ca_dir, "ca.pem"))
        self.image.put(flag_value(args, "ca-key"), source=os.path.join(ca_dir, "ca.key"),
                       mode=0o600)
        health = sidecar["healthCheck"]["command"][1:]
        self.run_until_healthy(
            "ecs-ringside", self.image.argv([ENTRYPOINT, *args], network_namespace=True),
            lambda pid: self.image.argv(health, network_of=pid))
        # The local issuer wrote its key and certificate to --cert-dir, as the image's user.
        cert_dir = self.image.path(flag_value(args, "cert-dir"))
        self.assertTrue(os.listdir(cert_dir), "nothing in --cert-dir")
        for name in os.listdir(cert_dir):
            self.assertEqual(os.stat(os.path.join(cert_dir, name)).st_uid, 65532, name)

    def test_kubernetes_sidecar_from_the_image(self):
        sidecar = load_pod()["spec"]["initContainers"][0]
        args = sidecar["args"]
        # The kubelet's projected volume: files are symlinks through ..data to a dated folder.
        folder = os.path.dirname(flag_value(args, "cert"))
        dated = f"{folder}/..2026_12_02_14_00_00.000000001"
        for flag, source in (("cert", self.cert), ("key", self.key), ("trust", self.ca)):
            file_name = os.path.basename(flag_value(args, flag))
            self.image.put(f"{dated}/{file_name}", source=source, mode=0o440)
            os.symlink(f"..data/{file_name}", self.image.path(f"{folder}/{file_name}"))
        os.symlink(os.path.basename(dated), self.image.path(f"{folder}/..data"))
        user = f"{sidecar['securityContext']['runAsUser']}:{sidecar['securityContext']['runAsGroup']}"
        startup = sidecar["startupProbe"]["exec"]["command"]
        readiness = sidecar["readinessProbe"]["exec"]["command"]
        self.assertEqual(startup, readiness)
        self.run_until_healthy(
            "pod-ringside", self.image.argv([ENTRYPOINT, *args], user=user,
                                            network_namespace=True),
            lambda pid: self.image.argv(startup, user=user, network_of=pid))

    def test_systemd_service(self):
        harness.require_tool("setpriv")
        [start] = unit_exec("ExecStart")
        [post] = unit_exec("ExecStartPost")
        credentials = os.path.join(self.workdir, "credentials")
        state = os.path.join(self.workdir, "state")
        # What systemd does for the unit: a dynamic user, the credentials readable by it,
        # the state directory its own, the paths in the environment.
        uid = 61234
        for folder in (credentials, state):
            os.makedirs(folder, mode=0o700)
            os.chown(folder, uid, uid)
        ca_dir = self.ca_dir
        for name in ("ca.pem", "ca.key"):
            shutil.copyfile(os.path.join(ca_dir, name), os.path.join(credentials, name))
            os.chown(os.path.join(credentials, name), uid, uid)
        os.chmod(self.workdir, 0o755)
        env = {"CREDENTIALS_DIRECTORY": credentials, "STATE_DIRECTORY": state}

        def expand(argv):
            argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in argv]
            return [harness.binary("ringside") if a == "/usr/local/bin/ringside" else a
                    for a in argv]
        as_unit = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                   "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
                   "--bounding-set=-all,+net_bind_service", "--no-new-privs"]
        argv = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                *as_unit, *expand(start)]
        def post_in_its_namespace(pid):
            # Until unshare has moved the process into its own network namespace,
            # /proc/PID/ns/net is this one's, and the probe (which waits up to 30 s) would
            # ask the wrong 127.0.0.1: report "not yet" instead.
            try:
                moved = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
            except OSError:
                moved = False
            if not moved:
                return ["false"]
            return ["nsenter", f"--net=/proc/{pid}/ns/net", "--", *as_unit, *expand(post)]

        self.run_until_healthy("systemd-ringside", argv, post_in_its_namespace)
        self.assertIn(443, ingress_ports(start))
        self.assertTrue(os.listdir(state), "nothing in the state directory (--cert-dir)")


if __name__ == "__main__":
    harness.main()
