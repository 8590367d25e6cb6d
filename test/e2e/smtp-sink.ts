// A mail server for the alert e-mail test: smtp-server (Nodemailer's) listening on loopback
// inside the stand-in's network namespace, where the guest's Alertmanager reaches it as
// 127.0.0.1:PORT. It accepts every message without authentication and prints each as a JSON
// line; SmtpSink runs it and keeps what arrived.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly data: string;
}

/** The sink's own process: `tsx smtp-sink.ts serve PORT`. */
async function serve(port: number): Promise<void> {
  const { SMTPServer } = await import("smtp-server");
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const mail: ReceivedMail = {
          from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString("utf8"),
        };
        process.stdout.write(`${JSON.stringify(mail)}\n`);
        callback();
      });
    },
  });
  server.listen(port, "127.0.0.1", () => process.stdout.write("listening\n"));
}

export class SmtpSink {
  readonly received: ReceivedMail[] = [];
  private child: ChildProcess | undefined;

  /** Starts the sink in network namespace `namespace` on 127.0.0.1:`port`. */
  async start(namespace: string, port: number): Promise<void> {
    const child = spawn(
      "ip",
      [
        "netns",
        "exec",
        namespace,
        process.execPath,
        "--import",
        "tsx",
        __filename,
        "serve",
        String(port),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    this.child = child;
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the SMTP sink exited with ${code}`)));
      lines.on("line", (line) => {
        if (line === "listening") resolve();
        else this.received.push(JSON.parse(line) as ReceivedMail);
      });
    });
  }

  stop(): void {
    this.child?.kill();
  }
}

if (require.main === module && process.argv[2] === "serve") {
  void serve(Number(process.argv[3]));
}
