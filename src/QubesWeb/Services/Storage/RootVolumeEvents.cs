using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Keeps volumes right when a qube starts or stops without the console asking (virsh, the guest powering off, a
/// crash). A template stopped that way still has its writes committed, as a "commit" job so it shows in the tasks
/// and a crash during it is marked; an AppVM's snapshot is simply dropped. A stop the console made is settled by its
/// own job, which holds the qube's lock, so the enqueue here is refused and nothing is done twice.
/// </summary>
public sealed class RootVolumeEvents(EstateMonitor estate, RootLifecycle lifecycle, RootRecovery recovery, JobEngine jobs, IHypervisor hypervisor,
    RootDetach detach, ILogger<RootVolumeEvents> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        estate.DomainChanged += OnDomainChanged;
        // Dirty overlays that start-up recovery found on halted templates: their writes are committed now.
        foreach (var name in recovery.TakePendingCommits())
            await EnqueueCommitAsync(name, "Committed at start-up: it had stopped while the console was not running");
        // Instant copies not yet independent (their detach cut off by the stop, or never queued): it starts again from
        // what the image is, unless the user paused it.
        foreach (var name in await detach.PendingAsync(ct))
        {
            try
            {
                await jobs.EnqueueAsync(JobKind.Detach, name, ct);
            }
            catch (Exception e) when (e is JobConflictException or Data.Qubes.QubeRuleException)
            {
                log.LogInformation("No detach queued for {Qube}: {Reason}", name, e.Message);
            }
        }
    }

    public Task StopAsync(CancellationToken ct)
    {
        estate.DomainChanged -= OnDomainChanged;
        return Task.CompletedTask;
    }

    private void OnDomainChanged(DomainChange change)
    {
        if (change.Kind is DomainChangeKind.Stopped or DomainChangeKind.Crashed)
            _ = Task.Run(() => OnStoppedAsync(change));
        else if (change.Kind is DomainChangeKind.Started)
            _ = Task.Run(() => OnStartedAsync(change));
    }

    private async Task OnStoppedAsync(DomainChange change)
    {
        try
        {
            if (!await lifecycle.NeedsSettleAsync(change.Name)) return;
            if (await lifecycle.HasDirtyOverlayAsync(change.Name))
            {
                // A job holding the qube settles its volumes itself when it sees the stop: no commit job to refuse.
                if (await jobs.IsLockedAsync(change.Name)) return;
                await EnqueueCommitAsync(change.Name, "Committed after it stopped outside the console");
            }
            else
                await lifecycle.SettleStoppedAsync(change.Name, "", change.TimeUtc);
        }
        catch (Exception e)
        {
            log.LogWarning("Could not settle the volumes of {Qube} after it stopped: {Error}", change.Name, e.Message);
        }
    }

    /// <summary>
    /// A start the console did not make (only the test driver lets one happen: a real hypervisor cannot open the
    /// missing overlay): its overlays are made now so that the qube's root and outdated state are known.
    /// </summary>
    private async Task OnStartedAsync(DomainChange change)
    {
        try
        {
            if (hypervisor.GetDomain(change.Name)?.State is not (RunState.Running or RunState.Paused)) return;
            // The usual case, a start the console made, is recognized by one light query and costs nothing more.
            if (await lifecycle.NeedsSettleAsync(change.Name)) return;
            await lifecycle.PrepareStartAsync(change.Name, onlyMissing: true);
        }
        catch (Exception e)
        {
            log.LogWarning("Could not prepare the volumes of {Qube}, started outside the console: {Error}", change.Name, e.Message);
        }
    }

    private async Task EnqueueCommitAsync(string name, string reason)
    {
        try
        {
            await jobs.EnqueueAsync(JobKind.Commit, name, new CommitRootRequest(reason), CancellationToken.None);
        }
        catch (JobConflictException)
        {
            // The job holding the qube settles its volumes itself when it sees the stop.
        }
        catch (Data.Qubes.QubeRuleException e)
        {
            log.LogInformation("No commit for {Qube}: {Reason}", name, e.Message);
        }
    }
}
