export { createLogger, type Logger } from '../../control-plane/src/log.js';
