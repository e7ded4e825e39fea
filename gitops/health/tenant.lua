-- Argo CD health of an imagegen Tenant (group imagegen.semantest.io, kind Tenant).
-- Healthy once the operator has seen the current spec and every region's pool is Ready;
-- Degraded when the operator says so (a region unreachable or refusing); otherwise
-- Progressing, with the operator's own message.
local hs = {status = "Progressing", message = "Waiting for the imagegen operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "The operator has not reconciled the current spec yet"
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Degraded" and condition.status == "True" then
    return {status = "Degraded", message = condition.message or condition.reason}
  end
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = ready.message or "Ready"}
end
if ready ~= nil then
  hs.message = ready.message or ready.reason
end
return hs
