using QubesWeb.Data.Jobs;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Templates;

/// <summary>
/// What a page can do to a template's (or a standalone's) root and its qubes: update, check for updates, compact,
/// revert, restart the outdated qubes. Each queues one job; a refusal says why and queues nothing.
/// </summary>
public sealed class TemplateCommands(JobEngine jobs)
{
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
