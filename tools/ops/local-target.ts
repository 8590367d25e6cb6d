// How `npm run ops -- --local` finds the local platform: `npm run local` writes this file next
// to its other state, readable by the user who ran it. It holds an SshTarget (local/ssh.ts) for
// the keel-ops account, with the local operator's key and a copy of the guest's known hosts.

export const LOCAL_TARGET_FILE = "operator-target.json";
