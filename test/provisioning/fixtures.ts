// Plain values for provisioning tests: a staging-like server and recognisable secrets.
import { DEFAULT_RATE_LIMITS } from "../../infra/config-rules";
import type { SecretValues, ServerValues } from "../../provisioning/values";

export function serverValues(overrides: Partial<ServerValues> = {}): ServerValues {
  return {
    apiHost: "api.example.com",
    acmeEmail: "ops@example.com",
    acmeServer: "https://acme-v02.api.letsencrypt.org/directory",
    sshUser: "root",
    sshAllowCidrs: ["198.51.100.7/32", "2001:db8:1::/48"],
    operatorKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyForTestsOnly ops@laptop"],
    frontendOrigins: ["https://app.example.com", "https://admin.example.com"],
    apiInstances: 2,
    memoryMb: 2048,
    rateLimits: DEFAULT_RATE_LIMITS,
    releaseWatch: { seconds: 60, maxErrorRate: 0.1, maxLatencyFactor: 3 },
    alerts: { email: "ops@example.com", smtp: null },
    dataDevice: "/dev/disk/by-id/scsi-0DO_Volume_keel-staging-data",
    storage: {
      endpoint: "https://fedcba9876543210fedcba9876543210.r2.cloudflarestorage.com",
      region: "auto",
      bucket: "keel-staging-evidence",
    },
    backup: {
      storage: {
        endpoint: "https://fedcba9876543210fedcba9876543210.r2.cloudflarestorage.com",
        region: "auto",
        bucket: "keel-staging-backups",
      },
      retentionFull: 4,
      queueMaxMb: 2048,
    },
    restore: "",
    release: { id: "0123456789abcdef", archive: "/nonexistent/api-0123456789abcdef.tar.gz" },
    ...overrides,
  };
}

export function secretValues(overrides: Partial<SecretValues> = {}): SecretValues {
  return {
    postgresPassword: "PgSecret0000000000000000000000000000000001",
    redisPassword: "RedisSecret00000000000000000000000000000002",
    jwtSecret: "JwtSecret000000000000000000000000000000000000000000000000000003",
    adminApiKey: "AdminKey0000000000000000000000000000000000004",
    s3AccessKeyId: "S3KeyId0000000000000000000000005",
    s3SecretAccessKey: "S3Secret00000000000000000000000000000000000000000000000000000006",
    backupAccessKeyId: "BackupKeyId000000000000000000007",
    backupSecretAccessKey: "BackupSecret0000000000000000000000000000000000000000000000000008",
    backupCipherPass: "BackupPass000000000000000000000000000000000000000000000000000009",
    smtpPassword: "SmtpPass00000000000000000000000000000010",
    ...overrides,
  };
}
