// How `npm run ops -- --local` finds the local platform: `npm run local` writes this file next
// to its other state, readable by the user who ran it.

export interface LocalOperatorTarget {
  readonly host: string;
  readonly port: number;
  /** The local operator's private key, owned by the user who ran `sudo npm run local`. */
  readonly identity: string;
  readonly knownHosts: string;
}

export const LOCAL_TARGET_FILE = "operator-target.json";
