// One shape for a task, whether it came from the REST API (the task document) or from Studio
// (the dispatcher's Task message as protobuf JSON), so every view renders both the same way.

export const STATUSES = ["PENDING", "PROCESSING", "SUCCESS", "FAILED", "CANCELLED"];
export const RUNNING = new Set(["PENDING", "PROCESSING"]);

export function isRunning(task) {
  return RUNNING.has(task.status);
}

/**
 * The results worth showing: none while the task runs, because until storage has them they
 * point at the provider (which may not serve them for long, or to this browser).
 */
export function shownResults(task) {
  return isRunning(task) ? [] : task.results || [];
}

/** From the REST task document (`taskId`, `model`, `cost` …). */
export function fromDocument(doc) {
  return {
    id: doc.taskId,
    status: doc.status,
    progress: doc.progress ?? 0,
    model: doc.model,
    provider: doc.provider,
    outputType: doc.outputType,
    prompt: doc.prompt || "",
    numberOfOutputs: doc.numberOfOutputs,
    parameters: doc.parameters || {},
    inputImages: doc.inputImages || null,
    results: doc.results || [],
    error: doc.error || null,
    quotedUsd: doc.cost?.quotedUsd,
    chargedUsd: doc.cost?.chargedUsd,
    priceDisplay: doc.cost?.display || "",
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    completedAt: doc.completedAt,
    deletedAt: doc.deletedAt,
    shotId: doc.shotId || "",
    owner: doc.owner,
    providerTaskId: doc.providerTaskId,
  };
}

/** From the Task message as Studio returns it (`id`, `modelSlug`, `quote` …). */
export function fromMessage(msg) {
  const error = msg.error && (msg.error.code || msg.error.message) ? { code: msg.error.code || "FAILED", message: msg.error.message || "" } : null;
  return {
    id: msg.id,
    status: msg.status === "TASK_STATUS_UNSPECIFIED" ? "PENDING" : msg.status,
    progress: msg.progress ?? 0,
    model: msg.modelSlug,
    provider: msg.providerSlug,
    outputType: msg.outputType,
    prompt: msg.prompt || "",
    numberOfOutputs: msg.numberOfOutputs,
    parameters: msg.parameters || {},
    inputImages: msg.inputImages || [],
    results: (msg.results || []).map((r) => ({ ...r, size: r.size ? Number(r.size) : undefined })),
    error,
    quotedUsd: msg.quote?.usd,
    chargedUsd: msg.charge?.usd,
    priceDisplay: msg.quote?.display || "",
    createdAt: msg.createdAt,
    updatedAt: msg.updatedAt,
    completedAt: msg.completedAt,
    deletedAt: msg.deletedAt,
    shotId: msg.shotId || "",
    owner: msg.owner,
    providerTaskId: msg.providerTaskId,
  };
}
