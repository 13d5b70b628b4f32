using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Qubes;

/// <summary>Why a standalone is made; it presets the wizard's defaults and the trust note (the seed's two uses).</summary>
public enum StandalonePurpose
{
    Development,
    Untrusted,
    Other,
}

/// <summary>
/// A new qube with a root of its own: a standalone from a template (or empty, for installing an OS from media), a
/// clone of a template into a new template, or a clone of a standalone. The job's target is the new name.
/// </summary>
/// <param name="Source">The template or standalone whose current committed root revision is copied; null: an empty root.</param>
/// <param name="RootSizeBytes">The new root's size; not below the source's (null: the source's, or 10 GiB when empty).</param>
/// <param name="CopyPrivate">Also copy the source's private volume (off by default, as in Qubes' code).</param>
/// <param name="InstallMedia">With an empty root: an ISO file on dom0's disk to attach and boot first (see <see cref="Qubes.InstallMedia"/>).</param>
public sealed record CloneRequest(
    QubeClass Class,
    string? Source,
    string Label,
    string? NetVm = null,
    int? MemoryMiB = null,
    int? VCpus = null,
    long? RootSizeBytes = null,
    long? PrivateSizeBytes = null,
    bool CopyPrivate = false,
    string Notes = "",
    StandalonePurpose? Purpose = null,
    string? InstallMedia = null);

/// <summary>
/// What a copy will take once independent (the root is an overlay at first, but the detach copies it all in), for the
/// wizard's review and the job's own refusal; the free space is the pool's less what copies still detaching will take.
/// </summary>
public sealed record ClonePlan(string? Source, int? SourceRevision, long SourceVirtualSizeBytes, long SourceAllocatedBytes,
    long RequiredBytes, long FreeBytes)
{
    public bool Fits => RequiredBytes <= FreeBytes;
}

/// <summary>
/// Makes a qube with its own root (Qubes' qvm-create --standalone and clone_vm): a qcow2 overlay on the source's
/// current committed revision, usable at once whatever the root's size, with that revision pinned in the inventory
/// (<see cref="Volume.DetachSourceVolumeId"/>) so the source's retention, merges, compaction and removal leave it be;
/// then a detach job (<see cref="DetachRootJob"/>) copies the source's data in behind it and lets go of the pin. Its
/// private volume is fresh or copied. A failure or cancel removes everything the job made: no file, row or domain.
/// </summary>
public sealed class CloneQubeJob(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, DomainDefinitions domains, RootRevisions roots,
    PoolQueries pool, InstallMedia media, IOptions<EstateOptions> options) : IJobKind
{
    public const long DefaultRootSize = 10L << 30;
    public const long DefaultPrivateSize = 2L << 30;
    public const long VolatileSize = 10L << 30;
    public const long MaxVolumeSize = 2L << 40;

    public JobKind Kind => JobKind.Clone;

    public string Describe(string target) => $"Create {target} with its own root";

    private string PoolDir => options.Value.PoolDir;

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var request = JobArguments.Parse<CloneRequest>(arguments);
        await NewQubeRules.EnsureNameFreeAsync(target, inventory, hypervisor, ct);
        var source = await SourceAsync(request, ct);
        if (request.Class == QubeClass.TemplateVM && source?.Class != QubeClass.TemplateVM)
            throw new QubeRuleException("A new template is a clone of a template: choose the template to clone.");
        if (request.Class is not (QubeClass.StandaloneVM or QubeClass.TemplateVM))
            throw new QubeRuleException($"This makes standalones and templates; {QubeRules.Article(request.Class)} is made another way.");
        QubeRules.ValidateNotes(request.Notes);
        QubeRules.ValidateResources(request.MemoryMiB ?? QubeRules.DefaultMemoryMiB, request.VCpus ?? QubeRules.DefaultVCpus);
        if (request.InstallMedia is not null)
        {
            if (source is not null)
                throw new QubeRuleException("Installation media go with an empty root; a copy of a template already has its system.");
            media.ValidateIso(request.InstallMedia);
        }
        await NewQubeRules.EnsureLabelAsync(request.Label, inventory, ct);
        if (request.NetVm is not null)
        {
            var net = await inventory.FindAsync(request.NetVm, ct) ?? throw QubeRuleException.NoQube(request.NetVm, "to use as netvm");
            QubeRules.ValidateNetVm(target, request.Class, net);
        }
        var plan = await PlanAsync(request, ct);
        if (request.RootSizeBytes is { } size && size < plan.SourceVirtualSizeBytes)
            throw new QubeRuleException($"The root cannot be smaller than {Format(plan.SourceVirtualSizeBytes)}, the size of {source!.Name}'s root.");
        if (request.RootSizeBytes is > MaxVolumeSize || request.PrivateSizeBytes is > MaxVolumeSize)
            throw new QubeRuleException($"A volume is at most {Format(MaxVolumeSize)}.");
        if (request.RootSizeBytes is < 1L << 30 || request.PrivateSizeBytes is < 64L << 20)
            throw new QubeRuleException("The root is at least 1 GiB and the private volume at least 64 MiB.");
        if (!plan.Fits)
            throw new QubeRuleException($"Once independent, the copy needs {Format(plan.RequiredBytes)} but the pool has {Format(plan.FreeBytes)} free (less what copies still being made independent will take); free some space or choose a smaller source.");
    }

    private async Task<Qube?> SourceAsync(CloneRequest request, CancellationToken ct)
    {
        if (request.Source is null) return null;
        var source = await inventory.FindAsync(request.Source, ct)
            ?? throw QubeRuleException.NoQube(request.Source, "to copy");
        if (source.Class is not (QubeClass.TemplateVM or QubeClass.StandaloneVM))
            throw new QubeRuleException($"'{source.Name}' is {QubeRules.Article(source.Class)}: only a template's or a standalone's root can be copied.");
        if (!source.Volumes.Any(v => v.IsSaveOnStopRoot))
            throw new QubeRuleException($"'{source.Name}' has no committed root revision to copy.");
        if (source.Class == QubeClass.StandaloneVM && request.Class == QubeClass.TemplateVM)
            throw new QubeRuleException("A standalone is cloned into a standalone, not a template.");
        return source;
    }

    private static string Format(long bytes) => QubesWeb.Services.Format.Bytes(bytes);

    /// <summary>The source's current revision, what a copy of it needs (qemu-img measure of its chain), and the pool's free space.</summary>
    public async Task<ClonePlan> PlanAsync(CloneRequest request, CancellationToken ct = default)
    {
        var source = await SourceAsync(request, ct);
        PrivateFiles.CreateFolder(PoolDir);
        // Copies still detaching will take their share of it: not free for this one.
        var free = (await pool.SpaceAsync(ct)).FreeAfterCopiesBytes;
        var privateBytes = 0L;
        if (source is not null && request.CopyPrivate && source.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.Path is { } priv && File.Exists(priv))
        {
            privateBytes = await ImageChain.MeasureAsync(priv, PoolDir, ct);
        }
        if (source is null)
            return new ClonePlan(null, null, 0, 0, (1L << 20) + privateBytes, free);
        var root = source.Volumes.First(v => v.IsSaveOnStopRoot);
        var rev = root.Revisions.Single(r => r.Number == root.CurrentRevision);
        // The chain is checked before measure opens it (measure follows whatever the headers name), so no longer
        // side by side: a crafted backing file outside the pool must not be opened even to be measured.
        IReadOnlyList<ImageInfo> chain;
        try
        {
            chain = await ImageChain.ReadAsync(rev.Path, PoolDir, ct);
        }
        catch (UnsafeImageException e)
        {
            // A refusal the user reads in the wizard or the clone dialog, as every other reason not to copy.
            throw new QubeRuleException($"{source.Name}'s root cannot be copied. {e.Message}");
        }
        var measured = await ImageChain.MeasureAsync(rev.Path, PoolDir, ct);
        return new ClonePlan(source.Name, rev.Number, chain[0].VirtualSizeBytes, chain.Sum(l => l.ActualSizeBytes),
            measured + privateBytes, free);
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<CloneRequest>();
        var made = new MadeSoFar(job.Target, PoolDir);
        var dir = made.Folder;
        Task privateMade = Task.CompletedTask;
        IDisposable? pin = null;
        (int Volume, int Revision)? dependsOn = null;
        try
        {
            var rootPath = Path.Combine(dir, RootFiles.Revision(1));
            var privPath = Path.Combine(dir, "private.qcow2");
            string reason;
            long rootSize;
            ImageInfo? rootInfo = null;
            var source = request.Source is null ? null : await inventory.GetAsync(request.Source, ct);
            var sourcePrivate = source?.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private)?.Path;
            var copyPrivate = request.CopyPrivate && sourcePrivate is not null && File.Exists(sourcePrivate);
            if (!copyPrivate)
            {
                // An empty private volume does not wait for the root: it is made beside it, from the bytes qemu-img
                // wrote for an empty image of that size before (no process at all after the first).
                made.File("private.qcow2.new");
                made.File("private.qcow2");
                privateMade = RootStore.CreateEmptyAsync(privPath, request.PrivateSizeBytes ?? DefaultPrivateSize, ct);
            }
            if (source is not null)
            {
                // Held until the inventory row stores the pin (DetachSourceVolumeId): in between, only this in-memory
                // pin keeps the source's retention from letting go of the revision the overlay is written on.
                var (rev, sourceSize, memoryPin) = await roots.PinCurrentAsync(source.Name, ct);
                pin = memoryPin;
                await job.ProgressAsync(5, $"Making its root on {source.Name} revision {rev.Number}");
                // Refused before anything is written: the overlay would read all of the chain it is made on.
                await ImageChain.EnsureSafeAsync(rev.Path, PoolDir, ct);
                var part = made.File(RootFiles.Revision(1) + ".part");
                // An overlay, not a copy: the qube is usable at once whatever the root's size, and a detach job copies
                // the source's data in behind it. A larger root is simply a larger overlay (reads past the source's end are zeros).
                await QemuImg.CreateAsync(part, request.RootSizeBytes is { } size && size > sourceSize ? size : 0, Path.GetFullPath(rev.Path), ct);
                made.File(RootFiles.Revision(1));
                Durable.SyncFile(part);
                FaultPoints.Hit("overlay-made");
                Durable.Rename(part, rootPath);
                FaultPoints.Hit("root-renamed");
                // Known without asking qemu-img again: the overlay's size is the one it was made with, its bytes the file's.
                rootSize = request.RootSizeBytes is { } grown && grown > sourceSize ? grown : sourceSize;
                rootInfo = new ImageInfo(rootPath, rootSize, new FileInfo(rootPath).Length, rev.Path);
                dependsOn = (rev.VolumeId, rev.Number);
                await job.LogAsync($"Made its root as an overlay on {source.Name}'s root revision {rev.Number} ({Format(rootSize)}); a detach job copies that data in after the qube is made.");
                reason = $"Made from {source.Name} revision {rev.Number}";
            }
            else
            {
                rootSize = request.RootSizeBytes ?? DefaultRootSize;
                made.File(RootFiles.Revision(1));
                await QemuImg.CreateAsync(rootPath, rootSize, ct: ct);
                reason = "Empty, for an OS installed from media";
                await job.LogAsync($"Made an empty root of {Format(rootSize)}.");
            }
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(87, "Making the private volume");
            if (copyPrivate)
            {
                await ImageChain.EnsureSafeAsync(sourcePrivate!, PoolDir, ct);
                made.File("private.qcow2");
                await QemuImg.ConvertAsync(sourcePrivate!, privPath, ct: ct);
                if (request.PrivateSizeBytes is { } ps && ps > (await QemuImg.InfoAsync(privPath, ct)).VirtualSizeBytes)
                    await QemuImg.ResizeAsync(privPath, ps, ct);
                await job.LogAsync($"Copied {source!.Name}'s private volume.");
            }
            else
                await privateMade;
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(92, "Adding it to the inventory");
            rootInfo ??= await QemuImg.InfoAsync(rootPath, ct);
            // A fresh private volume is as big as asked; only a copy is asked what it became.
            var privInfo = copyPrivate ? await QemuImg.InfoAsync(privPath, ct)
                : new ImageInfo(privPath, request.PrivateSizeBytes ?? DefaultPrivateSize, new FileInfo(privPath).Length, null);
            // Qubes' clone copies properties, features and notes; a standalone made from a template starts afresh.
            var features = source is not null && source.Class == request.Class
                ? source.Features.Where(f => f.Key is not ("internal" or "template_for_dispvms")).ToDictionary(f => f.Key, f => f.Value)
                : source?.Feature("os-distribution") is { } os ? new Dictionary<string, string> { ["os-distribution"] = os } : null;
            await inventory.CreateAsync(new NewQube(job.Target, request.Class, request.Label, null, request.NetVm, false,
                request.MemoryMiB ?? source?.MemoryMiB, request.VCpus ?? source?.VCpus, request.Notes, Features: features,
                Volumes:
                [
                    new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Dirty), rootInfo.VirtualSizeBytes, rootInfo.ActualSizeBytes,
                        new NewRevision(rootPath, reason, rootInfo.ActualSizeBytes), dependsOn?.Volume, dependsOn?.Revision),
                    new NewVolume(VolumeKind.Private, privPath, privInfo.VirtualSizeBytes, privInfo.ActualSizeBytes),
                    new NewVolume(VolumeKind.Volatile, Path.Combine(dir, "volatile.qcow2"), VolatileSize),
                ]), ct);
            made.RowAdded = true;
            // The row holds the pin now, and survives a restart.
            pin?.Dispose();
            FaultPoints.Hit("row-added");
            if (request.InstallMedia is not null && source is null)
            {
                await inventory.SetInstallMediaAsync(job.Target, media.ValidateIso(request.InstallMedia), bootFromIt: true, ct);
                await job.LogAsync($"Attached {request.InstallMedia} as its CD-ROM: it boots from it first, until its first shutdown.");
            }
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(96, "Defining its domain");
            await domains.ApplyAsync(job.Target, ct);
            made.Defined = true;
            FaultPoints.Hit("defined");
            await job.LogAsync($"{job.Target} created: {request.Class}{(source is null ? ", empty root" : $" from {source.Name}")}, label {request.Label}, netvm {request.NetVm ?? "none"}.");
            estate.InventoryChanged();
            if (dependsOn is not null)
            {
                // Its own job, with its own lock: the new qube can start meanwhile. A crash before this line leaves the
                // pin stored, and start-up queues the detach.
                var detach = await job.Jobs.EnqueueAsync(JobKind.Detach, job.Target, CancellationToken.None);
                await job.LogAsync($"Making it independent of {source!.Name} in the background: task #{detach.Id}.");
            }
        }
        catch
        {
            // Not removed while qemu-img may still be making it.
            try { await privateMade; } catch (Exception e) when (e is ProcessFailedException or OperationCanceledException or IOException) { }
            await job.LogAsync("Removing what this job made.", Data.Jobs.JobLogLevel.Warning);
            await made.UndoAsync(inventory, hypervisor, estate);
            throw;
        }
        finally
        {
            pin?.Dispose();
        }
    }

    /// <summary>Died half-way: a qube that reached the inventory exists; otherwise the files made for it go.</summary>
    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        MadeSoFar.RecoverAsync(job, inventory, PoolDir, [RootFiles.Revision(1) + ".part", RootFiles.Revision(1), "private.qcow2.new", "private.qcow2"], ct);
}
