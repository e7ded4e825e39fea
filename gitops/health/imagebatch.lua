-- Argo CD health of an imagegen ImageBatch (group imagegen.semantest.io, kind ImageBatch).
-- Succeeded is Healthy; Failed, PartiallySucceeded and Rejected are Degraded (the message
-- says why); Cancelled is Suspended (stopped on purpose); anything else is Progressing.
local phase = obj.status ~= nil and obj.status.phase or nil
local message = obj.status ~= nil and obj.status.message or nil
local progress = obj.status ~= nil and obj.status.progress or nil
if phase == "Succeeded" then
  return {status = "Healthy", message = progress or "Succeeded"}
end
if phase == "Failed" or phase == "PartiallySucceeded" or phase == "Rejected" then
  return {status = "Degraded", message = message or phase}
end
if phase == "Cancelled" then
  return {status = "Suspended", message = message or "Cancelled"}
end
return {status = "Progressing", message = progress or phase or "Waiting for the imagegen operator"}
