using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Templates;

/// <summary>
/// A template made from a disk image already on dom0's disk (Debian's or Fedora's cloud image, or one made by hand).
/// The job's target is the new template's name.
/// </summary>
/// <param name="ImagePath">The image's absolute path on dom0.</param>
/// <param name="Checksum">The expected SHA-256 or SHA-512 as the user pastes it; null: the one a checksum file beside the image lists.</param>
/// <param name="Format">The image's format; null: the one its header says. A format that disagrees with the header is refused.</param>
/// <param name="OsDistribution">The os-distribution feature (debian, ubuntu, fedora or other): how it is updated.</param>
/// <param name="RootSizeBytes">The template's root size; not below the image's (null: the image's).</param>
public sealed record ImportTemplateRequest(
    string ImagePath,
    string Label,
    string OsDistribution,
    string? Checksum = null,
    ImageFormat? Format = null,
    long? RootSizeBytes = null,
    long? PrivateSizeBytes = null,
    int? MemoryMiB = null,
    int? VCpus = null,
    string Notes = "");

/// <summary>What an image is and what importing it takes, for the import page's review and the job's own checks.</summary>
public sealed record ImportPlan(string ImagePath, ImageFormat Format, long FileBytes, long VirtualSizeBytes, ImageChecksum Checksum,
    long RequiredBytes, long FreeBytes)
{
    public bool Fits => RequiredBytes <= FreeBytes;

    /// <summary>The format by qemu-img's name for it (qcow2, raw).</summary>
    public string FormatName => ImageHeader.ToolName(Format);
}

/// <summary>
/// Imports a template (Proxmox's "import disk", Qubes' qvm-template install from a local file): the image's digest is
/// checked against the expected one before anything is written, then it is converted into the pool as the template's
/// root revision 1, with a fresh private volume, its row and its domain. The image must be one file (no backing file,
/// no external data file: see the security notes) in qcow2 or raw, opened with its format named. A mismatch, a
/// failure or a cancel leaves no file, row or domain behind.
/// </summary>
public sealed class ImportTemplateJob(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, DomainDefinitions domains,
    IOptions<EstateOptions> options) : IJobKind
{
    public JobKind Kind => JobKind.Import;

    public string Describe(string target) => $"Import template {target}";

    private string PoolDir => options.Value.PoolDir;

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var request = JobArguments.Parse<ImportTemplateRequest>(arguments);
        await NewQubeRules.EnsureNameFreeAsync(target, inventory, hypervisor, ct);
        await NewQubeRules.EnsureLabelAsync(request.Label, inventory, ct);
        if (!OsDistributions.IsKnown(request.OsDistribution))
            throw new QubeRuleException($"There is no OS family '{QubeRules.Shown(request.OsDistribution)}'; choose {string.Join(", ", OsDistributions.All.Select(d => d.Value))}.");
        QubeRules.ValidateNotes(request.Notes);
        QubeRules.ValidateResources(request.MemoryMiB ?? QubeRules.DefaultMemoryMiB, request.VCpus ?? QubeRules.DefaultVCpus);
        var plan = await PlanAsync(request, ct);
        if (request.RootSizeBytes is { } size && size < plan.VirtualSizeBytes)
            throw new QubeRuleException($"The root cannot be smaller than the image ({Format.Bytes(plan.VirtualSizeBytes)}).");
        if (request.RootSizeBytes is > CloneQubeJob.MaxVolumeSize || request.PrivateSizeBytes is > CloneQubeJob.MaxVolumeSize)
            throw new QubeRuleException($"A volume is at most {Format.Bytes(CloneQubeJob.MaxVolumeSize)}.");
        if (request.PrivateSizeBytes is < 64L << 20)
            throw new QubeRuleException("The private volume is at least 64 MiB.");
        if (!plan.Fits)
            throw new QubeRuleException($"The import needs {Format.Bytes(plan.RequiredBytes)} but the pool has {Format.Bytes(plan.FreeBytes)} free; free some space first.");
    }

    /// <summary>
    /// Reads what the image is (its header first, then qemu-img info with the format named), finds the expected digest
    /// and measures what the copy needs. Refuses, saying what to fix, an image the console will not import.
    /// </summary>
    public async Task<ImportPlan> PlanAsync(ImportTemplateRequest request, CancellationToken ct = default)
    {
        var path = ValidatePath(request.ImagePath);
        var header = ReadHeader(path);
        if (header.Other is { } other)
            throw new QubeRuleException($"{path} is a {other} image; the console imports qcow2 and raw. Convert it first, e.g. qemu-img convert -f {other.Split(' ')[0]} -O qcow2 -- {path} {Path.ChangeExtension(path, ".qcow2")}.");
        if (header.HasBackingFile)
            throw new QubeRuleException($"{path} has a backing file: it is an overlay, not a whole image. Import the image it is written on, or flatten it first (qemu-img convert -O qcow2). The console does not open what an image's header names.");
        if (header.HasExternalDataFile)
            throw new QubeRuleException($"{path} keeps its data in an external data file, which the console does not open. Convert it into a plain qcow2 first.");
        var format = request.Format ?? header.Detected;
        if (format != header.Detected)
            throw new QubeRuleException(header.Detected == ImageFormat.Qcow2
                ? $"{path} has a qcow2 header; import it as qcow2 (read as raw, the guest would see the qcow2 file itself)."
                : $"{path} has no qcow2 header; import it as raw.");
        var checksum = request.Checksum is { Length: > 0 } typed && !string.IsNullOrWhiteSpace(typed)
            ? ImageChecksum.Parse(typed)
            : ImageChecksum.FindBeside(path)
              ?? throw new QubeRuleException($"Give the image's expected SHA-256 or SHA-512 (as sha256sum prints it), or put the checksum file it was published with (SHA256SUMS, SHA512SUMS, *-CHECKSUM) next to it: none in {Path.GetDirectoryName(path)} lists {Path.GetFileName(path)}.");
        ImageInfo info;
        long measured;
        try
        {
            info = await QemuImg.InfoAsync(path, ct, ImageHeader.ToolName(format));
            measured = await QemuImg.MeasureAsync(path, ct, ImageHeader.ToolName(format));
        }
        catch (ProcessFailedException e)
        {
            throw new QubeRuleException($"qemu-img cannot read {path} as {ImageHeader.ToolName(format)}: {QubeRules.Shown(e.Message)}");
        }
        // What the header said is checked again by qemu-img's own reading; the two must agree.
        if (info.BackingFile is not null)
            throw new QubeRuleException($"{path} has a backing file: it is an overlay, not a whole image.");
        PrivateFiles.CreateFolder(PoolDir);
        var free = new DriveInfo(Path.GetFullPath(PoolDir)).AvailableFreeSpace;
        var privateBytes = 1L << 20; // an empty private volume's metadata
        return new ImportPlan(path, format, new FileInfo(path).Length, info.VirtualSizeBytes, checksum, measured + privateBytes, free);
    }

    private string ValidatePath(string? imagePath) =>
        HostFiles.Validate(imagePath, PoolDir, "image", "/var/lib/qubesweb/images/debian-12-genericcloud-amd64.qcow2",
            "import an image from elsewhere (a qube's volume is cloned, not imported)");

    private static ImageHeader ReadHeader(string path)
    {
        try
        {
            return ImageHeader.Read(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QubeRuleException($"Cannot read {path}: {e.Message}");
        }
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<ImportTemplateRequest>();
        await job.ProgressAsync(1, "Reading the image");
        // Checked again: the file may have changed since the job was queued.
        var plan = await PlanAsync(request, ct);
        var path = plan.ImagePath;
        var before = Stamp(path);
        var checksum = plan.Checksum;
        await job.LogAsync($"{path}: {ImageHeader.ToolName(plan.Format)}, {Format.Bytes(plan.VirtualSizeBytes)} virtual, {Format.Bytes(plan.FileBytes)} file; expected {checksum.AlgorithmName} {checksum.Hex} ({(checksum.Source == "typed" ? "as given" : "from " + checksum.Source)}).");

        var hashing = job.TrackTool(1, 35, p => $"Checking the image's {checksum.AlgorithmName}: {p:0}%");
        var actual = await ImageChecksum.ComputeAsync(path, checksum.Algorithm, share => hashing.Report(share * 100), ct);
        await hashing.DrainAsync();
        if (!string.Equals(actual, checksum.Hex, StringComparison.Ordinal))
            throw new QubeRuleException($"The image's {checksum.AlgorithmName} is {actual}, but {(checksum.Source == "typed" ? "the one given" : checksum.Source)} says {checksum.Hex}: it is not the image published under that checksum (a damaged or other file). Nothing was written.");
        await job.LogAsync($"{checksum.AlgorithmName} matches.");
        FaultPoints.Hit("verified");
        ct.ThrowIfCancellationRequested();

        var made = new MadeSoFar(job.Target, PoolDir);
        var rootPath = Path.Combine(made.Folder, RootFiles.Revision(1));
        var privPath = made.File("private.qcow2");
        // An empty private volume does not wait for the root's copy: it is made beside it.
        var privateMade = QemuImg.CreateAsync(privPath, request.PrivateSizeBytes ?? CloneQubeJob.DefaultPrivateSize, ct: ct);
        try
        {
            var part = made.File(RootFiles.Revision(1) + ".part");
            var converting = job.TrackTool(35, 90, p => $"Converting the image into the pool: {p:0}%");
            await RootStore.ImportAsync(path, plan.Format, part, converting.Report, ct);
            await converting.DrainAsync();
            // The digest was of the file as it was then; a file changed since is not what was checked.
            if (Stamp(path) != before)
                throw new QubeRuleException($"{path} changed while it was imported; nothing was kept. Import it again once nothing writes to it.");
            FaultPoints.Hit("converted");
            var info = await QemuImg.InfoAsync(part, ct);
            if (request.RootSizeBytes is { } size && size > info.VirtualSizeBytes)
            {
                await QemuImg.ResizeAsync(part, size, ct);
                await job.LogAsync($"Root grown to {Format.Bytes(size)}.");
                info = await QemuImg.InfoAsync(part, ct);
            }
            made.File(RootFiles.Revision(1));
            Durable.SyncFile(part);
            Durable.Rename(part, rootPath);
            FaultPoints.Hit("root-renamed");
            await job.LogAsync($"Converted into {rootPath} ({Format.Bytes(info.ActualSizeBytes)} on disk).");
            await privateMade;
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(92, "Adding it to the inventory");
            var privInfo = await QemuImg.InfoAsync(privPath, ct);
            await inventory.CreateAsync(new NewQube(job.Target, QubeClass.TemplateVM, request.Label, null, null, false,
                request.MemoryMiB, request.VCpus, request.Notes,
                Features: new Dictionary<string, string> { ["os-distribution"] = request.OsDistribution },
                Volumes:
                [
                    new NewVolume(VolumeKind.Root, Path.Combine(made.Folder, RootFiles.Dirty), info.VirtualSizeBytes, info.ActualSizeBytes,
                        new NewRevision(rootPath, $"Imported from {path} ({checksum.AlgorithmName} {checksum.Hex[..16]}...)", info.ActualSizeBytes)),
                    new NewVolume(VolumeKind.Private, privPath, privInfo.VirtualSizeBytes, privInfo.ActualSizeBytes),
                    new NewVolume(VolumeKind.Volatile, Path.Combine(made.Folder, "volatile.qcow2"), CloneQubeJob.VolatileSize),
                ]), ct);
            made.RowAdded = true;
            FaultPoints.Hit("row-added");
            ct.ThrowIfCancellationRequested();

            await job.ProgressAsync(96, "Defining its domain");
            await domains.ApplyAsync(job.Target, ct);
            made.Defined = true;
            FaultPoints.Hit("defined");
            await job.LogAsync($"{job.Target} imported: a TemplateVM ({request.OsDistribution}), label {request.Label}.");
            estate.InventoryChanged();
        }
        catch
        {
            // Not removed while qemu-img may still be making it.
            try { await privateMade; } catch (Exception e) when (e is ProcessFailedException or OperationCanceledException or IOException) { }
            await job.LogAsync("Removing what this job made.", Data.Jobs.JobLogLevel.Warning);
            await made.UndoAsync(inventory, hypervisor, estate);
            throw;
        }
    }

    private static (long Length, DateTime Written) Stamp(string path)
    {
        var f = new FileInfo(path);
        return (f.Length, f.LastWriteTimeUtc);
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        MadeSoFar.RecoverAsync(job, inventory, PoolDir, [RootFiles.Revision(1) + ".part", RootFiles.Revision(1), "private.qcow2"], ct);
}
