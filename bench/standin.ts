// Measures the stand-in and prints the numbers recorded in local/README.md: a cold boot
// (with --cold: the root filesystem is built into a throwaway cache), warm boots, a reboot and
// a teardown. Usage: npx tsx bench/standin.ts [--cold] [--boots N]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bootStandin, type Standin } from "../local/standin";
import { timed } from "./standin/access";

async function measureBoot(label: string, withReboot: boolean): Promise<void> {
  const standin: Standin = await timed(label, () => bootStandin({ log: () => undefined }));
  try {
    await timed("  first SSH command", () => standin.ssh("true"));
    if (withReboot) await timed("  reboot until SSH answers", () => standin.reboot());
  } finally {
    await timed("  stop (poweroff and teardown)", () => standin.stop());
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cold: { type: "boolean", default: false }, boots: { type: "string", default: "3" } },
  });
  if (values.cold) {
    const cache = mkdtempSync(join(tmpdir(), "keel-standin-cache-"));
    process.env.KEEL_STANDIN_CACHE_DIR = cache;
    try {
      await measureBoot("cold boot (mmdebstrap + boot)", false);
    } finally {
      delete process.env.KEEL_STANDIN_CACHE_DIR;
      rmSync(cache, { recursive: true, force: true });
    }
  }
  const boots = Number(values.boots);
  for (let i = 1; i <= boots; i++) {
    await measureBoot(`warm boot ${i} (cached rootfs)`, i === 1);
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
