using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Consoles;

/// <summary>A picture of a qube's screen, as the browser shows it.</summary>
public sealed record ScreenPicture(string MimeType, byte[] Data);

/// <summary>
/// A running qube's screen as a picture (virDomainScreenshot through a libvirt stream), for the dashboard's small live
/// screens. qemu hands PNG (qemu 7.1 and later, which libvirt asks for it); anything else is not shown, as no browser
/// draws PPM. In the demo, libvirt's test driver draws a test picture of its own, not a guest's screen, and the
/// dashboard says so.
/// </summary>
public sealed class QubeScreens(IHypervisor hypervisor, EstateMonitor estate, Qubes.QubeQueries qubes, IOptions<HypervisorOptions> options)
{
    /// <summary>libvirt's test driver: its pictures are a test pattern, not a guest's screen.</summary>
    public bool IsTestPicture => options.Value.Uri.StartsWith("test:", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether the dashboard shows a screen for <paramref name="row"/>: a running qube other than dom0.</summary>
    public static bool Shows(QubeRow row) => row.State == RunState.Running && row.Class != QubeClass.AdminVM;

    /// <summary>The picture of <paramref name="name"/>'s screen, or why there is none (a sentence for the user).</summary>
    public async Task<(ScreenPicture? Picture, string? Problem)> TakeAsync(string? name, CancellationToken ct = default)
    {
        if (QubeRules.NameProblems(name).Count > 0) return (null, "That is not a qube's name.");
        var qube = await qubes.FindAsync(name!, ct);
        if (qube is null || qube.Class == QubeClass.AdminVM) return (null, "There is no such qube with a screen.");
        if (estate.StateOf(name!) != RunState.Running) return (null, $"{name} is not running, so it shows no screen.");
        // Only libvirt takes screenshots; the other hypervisor is the UI tests' in-memory double.
        if (hypervisor is not LibvirtHypervisor libvirt) return (null, $"This hypervisor shows no screen of {name}.");
        try
        {
            var (mime, data) = await libvirt.ScreenshotAsync(name!, ct);
            return mime == "image/png" ? (new ScreenPicture(mime, data), null) : (null, $"libvirt gave the screen of {name} as {mime}, which a browser does not show.");
        }
        catch (HypervisorException e)
        {
            return (null, $"No picture of {name}'s screen: {e.Message}");
        }
    }
}
