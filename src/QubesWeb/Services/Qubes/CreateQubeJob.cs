using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Qubes;

/// <summary>What a new AppVM or DispVM is made of; the job's target is its name.</summary>
/// <param name="Features">Features it starts with (a disposable's, inherited from its disposable template).</param>
public sealed record CreateQubeRequest(
    QubeClass Class,
    string Label,
    string? Template,
    string? NetVm,
    int? MemoryMiB = null,
    int? VCpus = null,
    bool ProvidesNetwork = false,
    string Notes = "",
    IReadOnlyDictionary<string, string>? Features = null);

/// <summary>
/// Creates a qube based on a template (an AppVM on a TemplateVM, or a named disposable on a disposable template): its private and volatile volumes (qcow2), its inventory row, its domain.
/// Everything is checked before the job is queued; a failure or cancel removes all it made, so no file, row or
/// domain is left behind.
/// </summary>
public sealed class CreateQubeJob(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, DomainDefinitions domains, IOptions<EstateOptions> options) : IJobKind
{
    public const long PrivateSize = 2L << 30;
    public const long VolatileSize = 10L << 30;

    public JobKind Kind => JobKind.Create;

    public string Describe(string target) => $"Create {target}";

    public Task ValidateAsync(string target, string? arguments, CancellationToken ct) =>
        ValidateAsync(target, JobArguments.Parse<CreateQubeRequest>(arguments), ct);

    /// <param name="template">The request's template as the caller read it just now (a launch did), so it is not read again.</param>
    public async Task ValidateAsync(string target, CreateQubeRequest request, CancellationToken ct, Qube? template = null)
    {
        QubeRules.ValidateName(target);
        if (request.Class is not (QubeClass.AppVM or QubeClass.DispVM))
            throw new QubeRuleException($"This creates AppVMs and disposables based on a template; {QubeRules.Article(request.Class)} is made another way (templates are installed or cloned, standalones come from the standalone wizard).");
        foreach (var (key, value) in request.Features ?? new Dictionary<string, string>()) QubeFeatureRules.Validate(key, value);
        QubeRules.ValidateNotes(request.Notes);
        QubeRules.ValidateResources(request.MemoryMiB ?? QubeRules.DefaultMemoryMiB, request.VCpus ?? QubeRules.DefaultVCpus);
        await NewQubeRules.EnsureNameFreeAsync(target, inventory, hypervisor, ct);
        if (template?.Name != request.Template)
            template = request.Template is null ? null
                : await inventory.FindAsync(request.Template, ct) ?? throw new QubeRuleException($"There is no template named '{QubeRules.Shown(request.Template)}'.");
        QubeRules.ValidateTemplate(request.Class, template);
        // A disposable's netvm is its template's, loaded with it.
        var net = request.NetVm is null ? null
            : template?.NetVm is { } known && known.Name == request.NetVm ? known
            : await inventory.FindAsync(request.NetVm, ct) ?? throw QubeRuleException.NoQube(request.NetVm, "to use as netvm");
        QubeRules.ValidateNetVm(target, request.Class, net);
        await NewQubeRules.EnsureLabelAsync(request.Label, inventory, ct);
    }

    public Task RunAsync(JobContext job, CancellationToken ct) => CreateAsync(job, job.ArgumentsAs<CreateQubeRequest>(), ct);

    /// <summary>Makes the qube named by the job's target; a failure or cancel removes all it made.</summary>
    /// <param name="template">The request's template as the caller read it in this job, so it is not read again.</param>
    public async Task CreateAsync(JobContext job, CreateQubeRequest request, CancellationToken ct, Qube? template = null)
    {
        var dir = Path.Combine(options.Value.PoolDir, job.Target);
        var madeRow = false;
        var defined = false;
        // An empty folder may be there already (made by hand); it is used, and on failure left as it was found.
        var madeDir = !Directory.Exists(dir);
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
            throw new QubeRuleException($"The pool already has a folder for '{job.Target}' ({dir}); remove or rename it first.");
        try
        {
            PrivateFiles.CreateFolder(dir);
            var priv = Path.Combine(dir, "private.qcow2");
            // A disposable's private volume is made at each start, from its disposable template's.
            if (request.Class != QubeClass.DispVM)
            {
                await job.ProgressAsync(10, "Creating the private volume");
                await QemuImg.CreateAsync(priv, PrivateSize, ct: ct);
            }
            // A disposable's launch is waited for: its log says what it is in one line, once it exists.
            if (request.Class != QubeClass.DispVM)
                await job.LogAsync($"Private volume made in {dir}; the root snapshot and the volatile volume are made at each start.");
            FaultPoints.Hit("private-made");
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(60, "Adding it to the inventory");
            if (template is null || template.Name != request.Template) template = await inventory.GetAsync(request.Template!, ct);
            var (privSize, privUsage) = request.Class == QubeClass.DispVM
                ? (template.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.VirtualSizeBytes ?? PrivateSize, 0L)
                : await QemuImg.InfoAsync(priv, ct) is var info ? (info.VirtualSizeBytes, info.ActualSizeBytes) : default;
            // A disposable's root is its disposable template's template's.
            var rootOwner = request.Class == QubeClass.DispVM && template.Template is { } t ? await inventory.GetAsync(t.Name, ct) : template;
            var templateRoot = rootOwner.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root);
            await inventory.CreateAsync(new NewQube(job.Target, request.Class, request.Label, request.Template, request.NetVm,
                request.ProvidesNetwork, request.MemoryMiB, request.VCpus, request.Notes, Features: request.Features,
                Volumes: [new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Snapshot), templateRoot?.VirtualSizeBytes ?? 0),
                          new NewVolume(VolumeKind.Private, priv, privSize, privUsage),
                          new NewVolume(VolumeKind.Volatile, Path.Combine(dir, "volatile.qcow2"), VolatileSize)]), ct);
            madeRow = true;
            FaultPoints.Hit("row-added");
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(80, "Defining its domain");
            await domains.ApplyAsync(job.Target, ct);
            defined = true;
            FaultPoints.Hit("defined");
            await job.LogAsync($"{job.Target} created: {request.Class} on {request.Template}, label {request.Label}, netvm {request.NetVm ?? "none"}"
                + (request.Class == QubeClass.DispVM ? $", in {dir}; its private volume is made at each start on a snapshot of {request.Template}'s." : "."));
            estate.InventoryChanged();
        }
        catch
        {
            await job.LogAsync("Removing what this job made.", Data.Jobs.JobLogLevel.Warning);
            await UndoAsync(job.Target, dir, madeDir, madeRow, defined);
            throw;
        }
    }

    private static readonly string[] VolumeFiles = ["private.qcow2", "volatile.qcow2", RootFiles.Snapshot];

    /// <summary>Takes away a qube this job kind made (its domain, row and pool folder), as a failed creation does.</summary>
    public Task UndoAsync(string name) => UndoAsync(name, Path.Combine(options.Value.PoolDir, name), madeDir: true, madeRow: true, defined: true);

    private async Task UndoAsync(string name, string dir, bool madeDir, bool madeRow, bool defined)
    {
        if (defined)
            try { hypervisor.Undefine(name); } catch (HypervisorException) { } catch (HypervisorUnavailableException) { }
        if (madeRow)
            try { await inventory.RemoveAsync(name, CancellationToken.None); } catch (QubeRuleException) { }
        if (Directory.Exists(dir))
        {
            if (madeDir) Directory.Delete(dir, recursive: true);
            else foreach (var f in VolumeFiles) File.Delete(Path.Combine(dir, f));
        }
        estate.InventoryChanged();
    }

    /// <summary>
    /// Died half-way: if the qube reached the inventory it exists (reconciliation defines its domain); if not, the
    /// volumes made for it are removed.
    /// </summary>
    public async Task RecoverAsync(JobContext job, CancellationToken ct)
    {
        if (await inventory.FindAsync(job.Target, ct) is not null)
        {
            await job.LogAsync($"{job.Target} reached the inventory; its domain is defined from it at reconciliation.");
            return;
        }
        var dir = Path.Combine(options.Value.PoolDir, job.Target);
        if (!Directory.Exists(dir)) return;
        // Only what this job makes is removed: a folder that holds anything else was not (only) this job's.
        foreach (var f in VolumeFiles) File.Delete(Path.Combine(dir, f));
        if (Directory.EnumerateFileSystemEntries(dir).Any())
        {
            await job.LogAsync($"Removed the half-made volumes in {dir}; kept the folder, which holds files this job did not make.", Data.Jobs.JobLogLevel.Warning);
            return;
        }
        Directory.Delete(dir);
        await job.LogAsync($"Removed the half-made volumes in {dir}.");
    }
}
