#!/usr/bin/python3
"""podspec.py -- the deploy manifests as data for tests/e2e/deploy_run.sh.

  (SCALEDJOB: a ScaledJob's file, or a CronJob's: its jobTemplate's pod)
  pod SCALEDJOB NAME OUT SECRETS   the Job template's pod spec, exactly as
                                   written, wrapped into a Pod NAME; the
                                   kubelet's two jobs that podman 4.3 lacks
                                   are done here and only these (asserted):
                                   $(VAR) expansion in env values and a
                                   hostAliases entry standing in for the
                                   cluster DNS of the brokers' host names;
                                   and a Secret volume's optional: true
                                   becomes false (podman 4.3.1 never mounts
                                   an optional one, even when the Secret
                                   exists)
  asis SCALEDJOB NAME OUT          the same without the expansion and
                                   with the volumes as written
  secret CREDENTIALS OUT           the Secret as podman's secret store wants
                                   it for secretKeyRef: {key: base64(value)}
  volsecret SCALEDJOB VOLUME FILE OUT
                                   the Secret a Secret volume names, as
                                   podman 4.3.1's secret volume reads it
                                   from its secret store: a Secret document
                                   whose data holds each of the volume's
                                   items' keys with FILE's text as is (podman
                                   writes data values into the files
                                   undecoded, and ignores items, stringData
                                   and defaultMode); prints the Secret's name
  get FILE PATH                    one field (dotted path, from the pod spec
                                   for a ScaledJob; from the JSON for Verda)
  action SCALEDJOB CODE            what podFailurePolicy does with CODE
  env SCALEDJOB SECRETS            the env as the kubelet composes it
  verda JSON                       the Verda container's env, NAME=VALUE
"""
import base64, copy, json, re, sys, yaml


def load(path):
    if path.endswith(".json"):
        return [json.load(open(path))]
    return [d for d in yaml.safe_load_all(open(path)) if d]


def scaledjob(path):
    return [d for d in load(path) if d.get("kind") in ("ScaledJob", "CronJob")][0]


def jobspec(d):
    """The Job spec: a ScaledJob's jobTargetRef, a CronJob's jobTemplate.spec."""
    return d["spec"]["jobTargetRef"] if d["kind"] == "ScaledJob" else d["spec"]["jobTemplate"]["spec"]


def podspec(path):
    return jobspec(scaledjob(path))["template"]["spec"]


def secrets(path):
    out = {}
    for d in load(path):
        if d.get("kind") == "Secret":
            out.update(d.get("stringData", {}))
            for k, v in d.get("data", {}).items():
                out[k] = base64.b64decode(v).decode()
    return out


def expand(value, seen):
    # Kubernetes' rule: $(NAME) of a variable defined earlier in the list is
    # replaced, $$ is a literal $, anything else stays as written.
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return seen.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, value)


def composed_env(spec, sec):
    c = spec["containers"][0]
    seen, out = {}, []
    for e in c.get("env", []):
        if "value" in e:
            v = expand(e["value"], seen)
        else:
            v = sec[e["valueFrom"]["secretKeyRef"]["key"]]
        seen[e["name"]] = v
        out.append((e["name"], v, "value" in e))
    return out


HOSTS = ["redis.redis.svc", "kafka-bootstrap.kafka.svc"]


def wrap(path, name, out, sec):
    sj = scaledjob(path)
    tmpl = jobspec(sj)["template"]
    spec = copy.deepcopy(tmpl["spec"])
    if sec is not None:
        env = composed_env(spec, sec)
        for e, (n, v, plain) in zip(spec["containers"][0]["env"], env):
            if plain:
                e["value"] = v
    spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": HOSTS}]
    flipped = []
    for v in spec.get("volumes", []) if sec is not None else []:
        if v.get("secret", {}).get("optional") is True:
            v["secret"]["optional"] = False
            flipped.append(v["name"])
    # Nothing else differs from the template as written.
    a, b = dict(tmpl["spec"]), copy.deepcopy(spec)
    b.pop("hostAliases")
    for v in b.get("volumes", []):
        if v["name"] in flipped:
            v["secret"]["optional"] = True
    ae, be = a["containers"][0].get("env"), b["containers"][0].get("env")
    assert [x["name"] for x in ae] == [x["name"] for x in be]
    a["containers"] = [dict(a["containers"][0], env=None)]
    b["containers"] = [dict(b["containers"][0], env=None)]
    assert a == b, "wrapped spec differs from the template"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": tmpl.get("metadata", {}).get("labels", {})},
           "spec": spec}
    with open(out, "w") as f:
        yaml.safe_dump(pod, f, sort_keys=False)


def volsecret(path, volume, pem, out):
    v = [v for v in podspec(path)["volumes"] if v["name"] == volume][0]["secret"]
    keys = [i["key"] for i in v.get("items", [])]
    assert keys and all(i["key"] == i["path"] for i in v["items"]), \
        "podman writes the Secret's keys as the file names: items must keep them"
    text = open(pem).read()
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": v["secretName"]},
           "data": {k: text for k in keys}}
    with open(out, "w") as f:
        yaml.safe_dump(sec, f, sort_keys=False)
    print(v["secretName"])


def get(path, dotted):
    d = load(path)[0] if path.endswith(".json") else podspec(path)
    for p in dotted.split("."):
        d = d[int(p)] if isinstance(d, list) else d[p]
    print(json.dumps(d) if isinstance(d, (dict, list)) else d)


def action(path, code):
    if code == 0:
        return "Succeeded"
    for r in jobspec(scaledjob(path)).get("podFailurePolicy", {}).get("rules", []):
        oc = r.get("onExitCodes")
        if not oc:
            continue
        hit = code in oc["values"]
        if (oc["operator"] == "In") == hit:
            return r["action"]
    return "Count"  # no rule matched: counted against backoffLimit


def main(a):
    cmd = a[0]
    if cmd == "pod":
        wrap(a[1], a[2], a[3], secrets(a[4]))
    elif cmd == "asis":
        wrap(a[1], a[2], a[3], None)
    elif cmd == "secret":
        s = secrets(a[1])
        json.dump({k: base64.b64encode(v.encode()).decode() for k, v in s.items()}, open(a[2], "w"))
    elif cmd == "volsecret":
        volsecret(a[1], a[2], a[3], a[4])
    elif cmd == "get":
        get(a[1], a[2])
    elif cmd == "action":
        print(action(a[1], int(a[2])))
    elif cmd == "env":
        for n, v, _ in composed_env(podspec(a[1]), secrets(a[2])):
            print(f"{n}={v}")
    elif cmd == "verda":
        for e in load(a[1])[0]["containers"][0]["env"]:
            assert e["type"] == "plain", e
            print(f'{e["name"]}={e["value_or_reference_to_secret"]}')
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
