import { Global, Module } from '@nestjs/common';
import { parseGovernancePolicy, type GovernancePolicy } from '@ledgerflow/domain-registry';
import {
  RegistryPoliciesController,
  TransitionRequestsController,
  VersionCommentsController,
} from './governance.controller.js';
import {
  GOVERNANCE_DEFAULT_POLICY,
  GOVERNANCE_EXPIRY_INTERVAL,
  GovernanceService,
} from './governance.service.js';

/**
 * The server default policy from LEDGERFLOW_REGISTRY_POLICY (JSON, same shape as policies/set);
 * none means every stage and alias is open to anyone allowed by permissions. A bad value stops boot.
 */
export function defaultPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): GovernancePolicy {
  const raw = env['LEDGERFLOW_REGISTRY_POLICY'];
  if (raw === undefined || raw.trim() === '') return {};
  try {
    return parseGovernancePolicy(JSON.parse(raw));
  } catch (e) {
    throw new Error(
      `LEDGERFLOW_REGISTRY_POLICY is not a valid governance policy: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** Seconds between expiry sweeps (LEDGERFLOW_REGISTRY_EXPIRY_INTERVAL_SECONDS, default 60; 0 off). */
export function expiryIntervalFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['LEDGERFLOW_REGISTRY_EXPIRY_INTERVAL_SECONDS'] ?? '60';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(
      `LEDGERFLOW_REGISTRY_EXPIRY_INTERVAL_SECONDS must be an integer >= 0, got '${raw}'`,
    );
  return n * 1000;
}

/**
 * Registry governance: policies, transition requests, comments. Global so the registry's
 * transition-stage and alias handlers can inject GovernanceService.authorizeDirect.
 */
@Global()
@Module({
  controllers: [
    RegistryPoliciesController,
    TransitionRequestsController,
    VersionCommentsController,
  ],
  providers: [
    GovernanceService,
    { provide: GOVERNANCE_DEFAULT_POLICY, useFactory: () => defaultPolicyFromEnv() },
    { provide: GOVERNANCE_EXPIRY_INTERVAL, useFactory: () => expiryIntervalFromEnv() },
  ],
  exports: [GovernanceService],
})
export class GovernanceModule {}
