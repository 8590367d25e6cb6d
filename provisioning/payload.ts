// How a step travels to the server. @pulumi/command's CopyToRemote copies only files that exist
// on disk, and rendered files may hold secrets, so every step is one remote command whose stdin
// carries its script, its rendered files and its secrets as lines of `<mode> <path> <base64>`.
// The command itself is a fixed POSIX sh bootstrap that unpacks the payload into a private temp
// directory (tmpfs on Debian 13), runs the step's script and removes the directory on exit.

export interface PayloadFile {
  /** Path inside the payload, relative, e.g. step.sh or files/etc/nginx/nginx.conf. */
  readonly path: string;
  readonly mode: "0600" | "0644" | "0755";
  readonly content: string;
}

const SAFE_PATH = /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9@._/-]+$/;

/** Encodes files as payload lines, sorted by path so equal inputs give equal payloads. */
export function encodePayload(files: readonly PayloadFile[]): string {
  const seen = new Set<string>();
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((file) => {
      if (!SAFE_PATH.test(file.path)) throw new Error(`unsafe payload path: ${file.path}`);
      if (seen.has(file.path)) throw new Error(`duplicate payload path: ${file.path}`);
      seen.add(file.path);
      return `${file.mode} ${file.path} ${Buffer.from(file.content, "utf8").toString("base64")}\n`;
    })
    .join("");
}

/** Decodes payload lines back into files: the inverse of encodePayload, for checking a payload. */
export function decodePayload(payload: string): PayloadFile[] {
  return payload
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [mode, path, data, ...rest] = line.split(" ");
      if (mode === undefined || path === undefined || data === undefined || rest.length > 0) {
        throw new Error(`malformed payload line: ${line.slice(0, 60)}`);
      }
      return {
        mode: mode as PayloadFile["mode"],
        path,
        content: Buffer.from(data, "base64").toString("utf8"),
      };
    });
}

// POSIX sh, so it runs whatever the login shell is. Paths were checked when encoding; the case
// statement refuses absolute and parent paths again on the server.
const BOOTSTRAP = [
  "set -eu",
  "umask 077",
  "work=$(mktemp -d)",
  'cleanup() { rm -rf "$work"; }',
  "trap cleanup EXIT",
  "while read -r mode path data; do",
  '  case "$path" in "" | /* | *..*) echo "keel: refusing payload path $path" >&2; exit 2 ;; esac',
  '  mkdir -p "$(dirname "$work/$path")"',
  '  printf %s "$data" | base64 -d >"$work/$path"',
  '  chmod "$mode" "$work/$path"',
  "done",
  'bash "$work/step.sh" "$work" "$@"',
].join("\n");

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The remote command of a step: the bootstrap, named keel-<step>, with the step's non-secret
 * arguments. A user other than root runs it through passwordless sudo.
 */
export function stepCommand(step: string, args: readonly string[], sshUser: string): string {
  const words = ["sh", "-c", shellQuote(BOOTSTRAP), `keel-${step}`, ...args.map(shellQuote)];
  return (sshUser === "root" ? words : ["sudo", "-n", ...words]).join(" ");
}
