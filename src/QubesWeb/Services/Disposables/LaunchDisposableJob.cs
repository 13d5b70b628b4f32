using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Services.Disposables;

/// <summary>Which disposable template a new disposable is made from; the job's target is its name (dispNNNN).</summary>
/// <param name="Preload">Made ahead for a later launch: paused once it runs, hidden, until a launch hands it out.</param>
public sealed record LaunchDisposableRequest(string DispTemplate, bool Preload = false);

/// <summary>
/// Launches a disposable (Qubes' DispVM.from_appvm, then start): a DispVM row with its disposable template's label,
/// netvm, resources and features, its root a snapshot of that template's template, its private a copy of the
/// disposable template's (made at start, never written back), a fresh volatile volume; then it is started. It is
/// removed with its files when it stops (<see cref="DisposableCleanup"/>). A launch that fails leaves nothing.
/// </summary>
public sealed class LaunchDisposableJob(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, CreateQubeJob create,
    IServiceProvider services) : IJobKind
{
    public JobKind Kind => JobKind.LaunchDisposable;

    public string Describe(string target) => $"Launch disposable {target}";

    /// <summary>The start job's code, run inside this job (resolved late: the job kinds are made together).</summary>
    private LifecycleJob Starter => services.GetServices<IJobKind>().OfType<LifecycleJob>().Single(k => k.Kind == JobKind.Start);

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var request = JobArguments.Parse<LaunchDisposableRequest>(arguments);
        if (!hypervisor.Connection.IsUp)
            throw new HypervisorUnavailableException($"libvirt is not reachable ({hypervisor.Connection.Error}); disposables can be launched once it is back.");
        var dvm = await EnsureDispTemplateAsync(request.DispTemplate, ct);
        if (estate.StateOf(dvm) is not (RunState.Halted or RunState.Unknown)
            && dvm.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.Path is { } priv && Storage.DispvmPrivates.Latest(priv) is null)
            throw new QubeRuleException($"'{dvm.Name}' is running, so its private volume is being written, and no snapshot of it was made before; shut '{dvm.Name}' down first.");
        await create.ValidateAsync(target, RequestFor(dvm, request.Preload), ct, dvm);
    }

    /// <summary>The disposable template named <paramref name="name"/>, or a refusal that says what to change.</summary>
    public async Task<Qube> EnsureDispTemplateAsync(string name, CancellationToken ct)
    {
        var dvm = await inventory.FindAsync(name, ct) ?? throw QubeRuleException.NoQube(name, "to launch a disposable from");
        if (!dvm.IsDisposableTemplate)
            throw new QubeRuleException(dvm.Class == QubeClass.AppVM
                ? $"'{dvm.Name}' is not a disposable template; turn on \"Disposable template\" on its page first."
                : $"'{dvm.Name}' is {QubeRules.Article(dvm.Class)}; disposables are made from an AppVM that is a disposable template.");
        return dvm;
    }

    /// <summary>What Qubes copies from the disposable template: label, netvm, resources and features (not its own role).</summary>
    private static CreateQubeRequest RequestFor(Qube dvm, bool preload)
    {
        var features = dvm.Features.Where(f => !DisposableFeatures.NotInherited.Contains(f.Key)).ToDictionary(f => f.Key, f => f.Value);
        features[DisposableFeatures.AutoCleanup] = "True";
        if (preload)
        {
            // Hidden from the lists until a launch hands it out (Qubes 4.3 marks preloaded disposables so too).
            features[DisposableFeatures.Preloaded] = "True";
            features["internal"] = "1";
        }
        return new CreateQubeRequest(QubeClass.DispVM, dvm.Label.Name, dvm.Name, dvm.NetVm?.Name, dvm.MemoryMiB, dvm.VCpus,
            Notes: $"Disposable from {dvm.Name}: removed with its files when it stops.", Features: features);
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<LaunchDisposableRequest>();
        var dvm = await EnsureDispTemplateAsync(request.DispTemplate, ct);
        await create.CreateAsync(job, RequestFor(dvm, request.Preload), ct, dvm);
        try
        {
            await Starter.StartQubeAsync(job, ct, from: 0);
            if (request.Preload)
            {
                await job.ProgressAsync(95, "Pausing it until a launch takes it");
                hypervisor.Pause(job.Target);
                FaultPoints.Hit("paused");
                await estate.WaitForStateAsync(job.Target, s => s == RunState.Paused, TimeSpan.FromSeconds(60), ct);
                await job.LogAsync($"{job.Target} is preloaded: paused until a launch from {dvm.Name} hands it out.");
                return;
            }
        }
        catch
        {
            // A disposable that never ran is nobody's: it goes at once, not at a stop that will not come.
            if (hypervisor.GetDomain(job.Target)?.State is null or RunState.Halted or RunState.Crashed)
            {
                await job.LogAsync($"{job.Target} did not start; removing it.", Data.Jobs.JobLogLevel.Warning);
                await create.UndoAsync(job.Target);
            }
            throw;
        }
    }

    /// <summary>
    /// Died half-way: a row that was made belongs to a disposable, which the cleanup removes at start-up if it is not
    /// running; without a row, what creation made goes as for a failed creation.
    /// </summary>
    public async Task RecoverAsync(JobContext job, CancellationToken ct)
    {
        if (await inventory.FindAsync(job.Target, ct) is not null)
        {
            await job.LogAsync($"{job.Target} was made; if it is not running, it is removed as a stopped disposable.");
            return;
        }
        await create.RecoverAsync(job, ct);
    }
}
