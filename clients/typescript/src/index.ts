export { CtxstoreMemory, type CtxstoreMemoryConfig, plainText } from "./memory.js";
export { CtxstoreVector, type CtxstoreVectorConfig } from "./vector.js";
export { FilterError, ID_KEY, translate as translateFilter } from "./filter.js";
