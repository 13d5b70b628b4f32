using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Qubes;

/// <summary>
/// Installation media (virt-manager's and Proxmox's CD/DVD drive): an ISO file on dom0's disk attached to a standalone
/// or a template as its read-only CD-ROM, so that an installer runs in its graphical console. The qube boots from it
/// first until its first shutdown after the attach (an installer's own reboot keeps it; most eject the disc), then
/// from its disk; the ISO stays attached until it is detached.
/// </summary>
public sealed class InstallMedia(Inventory inventory, EstateMonitor estate, DomainDefinitions domains,
    IOptions<EstateOptions> options, ILogger<InstallMedia> log) : IHostedService
{
    /// <summary>ISO 9660's volume descriptor: "CD001" at byte 1 of sector 16 (2048-byte sectors).</summary>
    private const long IsoMagicOffset = 16 * 2048 + 1;

    public async Task AttachAsync(string name, string? isoPath, CancellationToken ct = default)
    {
        var qube = await inventory.GetAsync(name, ct);
        if (qube.Class is not (QubeClass.StandaloneVM or QubeClass.TemplateVM))
            throw new QubeRuleException($"{name} is {QubeRules.Article(qube.Class)}: installation media are for standalones and templates, which have a root of their own to install onto.");
        EnsureHalted(name, "attach installation media");
        var path = ValidateIso(isoPath);
        await inventory.SetInstallMediaAsync(name, path, bootFromIt: true, ct);
        await ApplyAsync(name, ct);
    }

    public async Task DetachAsync(string name, CancellationToken ct = default)
    {
        var qube = await inventory.GetAsync(name, ct);
        if (qube.InstallMedia is null) return;
        EnsureHalted(name, "detach its installation media");
        await inventory.SetInstallMediaAsync(name, null, bootFromIt: false, ct);
        await ApplyAsync(name, ct);
    }

    private void EnsureHalted(string name, string what)
    {
        var state = estate.StateOf(name);
        if (state is not (RunState.Halted or RunState.Crashed or RunState.Unknown))
            throw new QubeRuleException($"{name} is {state.ToString().ToLowerInvariant()}: shut it down to {what}.");
    }

    private async Task ApplyAsync(string name, CancellationToken ct)
    {
        try
        {
            await domains.ApplyAsync(name, ct);
        }
        finally
        {
            estate.InventoryChanged();
        }
    }

    /// <summary>The full path of a readable ISO 9660 file outside the pool, or a refusal that says what to fix.</summary>
    public string ValidateIso(string? isoPath)
    {
        var path = HostFiles.Validate(isoPath, options.Value.PoolDir, "ISO", "/var/lib/qubesweb/images/debian-12.8.0-amd64-netinst.iso",
            "attach an ISO from elsewhere");
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var magic = new byte[5];
            if (f.Length < IsoMagicOffset + magic.Length) throw NotIso(path);
            f.Seek(IsoMagicOffset, SeekOrigin.Begin);
            f.ReadExactly(magic);
            if (!magic.AsSpan().SequenceEqual("CD001"u8)) throw NotIso(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QubeRuleException($"Cannot read {path}: {e.Message}");
        }
        return path;
    }

    private static QubeRuleException NotIso(string path) =>
        new($"{path} is not an ISO 9660 image (no CD001 volume descriptor); attach an installer's .iso file.");

    public Task StartAsync(CancellationToken ct)
    {
        estate.DomainChanged += OnDomainChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        estate.DomainChanged -= OnDomainChanged;
        return Task.CompletedTask;
    }

    private void OnDomainChanged(DomainChange change)
    {
        if (change.Kind is DomainChangeKind.Stopped or DomainChangeKind.Crashed)
            _ = Task.Run(() => BootFromDiskAsync(change.Name));
    }

    /// <summary>The first shutdown after an attach: the next start boots from the disk the installer wrote.</summary>
    private async Task BootFromDiskAsync(string name)
    {
        try
        {
            if (await inventory.FindAsync(name) is not { BootFromMedia: true } qube) return;
            await inventory.SetInstallMediaAsync(name, qube.InstallMedia, bootFromIt: false);
            await ApplyAsync(name, CancellationToken.None);
            log.LogInformation("{Qube} stopped: it boots from its disk from now on; {Iso} stays attached until it is detached", name, qube.InstallMedia);
        }
        catch (Exception e) when (e is RefusalException or IOException)
        {
            log.LogWarning("Could not make {Qube} boot from its disk after it stopped: {Error}", name, e.Message);
        }
    }
}
