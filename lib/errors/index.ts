export { ERROR_CODES, errorCodeEntry, isErrorCode, type CodeWithPolicy, type ErrorCode, type ErrorCodeEntry, type ErrorPolicy } from './codes.ts';
export { GantryError, isGantryError, policyOf, registerErrorClass, type GantryErrorJSON } from './gantry-error.ts';
export { StalledError, TransientError, WaitingError } from './policy-errors.ts';
