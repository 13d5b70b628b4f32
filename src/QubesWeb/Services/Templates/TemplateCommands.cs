using QubesWeb.Data.Jobs;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Templates;

/// <summary>
/// What a page can do to a template's (or a standalone's) root and its qubes, and how a template is imported: update, check for updates, compact,
/// revert, restart the outdated qubes, keep fewer or more revisions. Each queues one job (or saves one setting); a
/// refusal says why and changes nothing.
/// </summary>
public sealed class TemplateCommands(JobEngine jobs, RootRetention retention, ImportTemplateJob imports)
{
    /// <summary>Queues the import of a template from an image on dom0's disk (checked first: a refusal queues nothing).</summary>
    public Task<Job> ImportAsync(string name, ImportTemplateRequest request, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Import, name, request, ct);

    /// <summary>What an image is and what importing it takes, for the import page to show before it is queued.</summary>
    public Task<ImportPlan> PlanImportAsync(ImportTemplateRequest request, CancellationToken ct = default) => imports.PlanAsync(request, ct);

    /// <summary>How many old revisions the root keeps (Qubes' revisions_to_keep); older ones are merged away at the next commit.</summary>
    public Task SetRevisionsToKeepAsync(string qube, int keep, CancellationToken ct = default) =>
        retention.SetRevisionsToKeepAsync(qube, keep, ct);

    public Task<Job> UpdateAsync(string qube, CancellationToken ct = default) => jobs.EnqueueAsync(JobKind.Update, qube, ct);

    public Task<Job> CheckUpdatesAsync(string qube, CancellationToken ct = default) => jobs.EnqueueAsync(JobKind.CheckUpdates, qube, ct);

    /// <summary>Compacts the root into one image; the old revisions go with it (when their last reader stops).</summary>
    public Task<Job> CompactAsync(string qube, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Compact, qube, new CompactRequest(DropOldRevisions: true), ct);

    public Task<Job> RevertAsync(string qube, int revision, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Revert, qube, new RevertRootRequest(revision), ct);

    public Task<Job> RestartOutdatedAsync(string template, RestartOutdatedRequest request, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.RestartOutdated, template, request, ct);
}
