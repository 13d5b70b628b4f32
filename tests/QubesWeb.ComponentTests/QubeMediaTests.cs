// The installation media card of a qube's page, rendered with bUnit over the real inventory and commands (the
// hypervisor is the in-memory fake): attach an ISO, see it boot first, detach it; refusals in place; locked while running.
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Hypervisor.Domains;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class QubeMediaTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-title")), Wait);
        return cut;
    }

    private string Iso(string name) => TestFiles.FakeIso(Path.Combine(Path.GetDirectoryName(PoolDir)!, "isos", name));

    private static Task ClickAsync(IRenderedComponent<QubeDetailPage> cut, string id) =>
        cut.InvokeAsync(() => cut.Find($"#{id}").ClickAsync(new MouseEventArgs()));

    [Fact]
    public async Task An_ISO_is_attached_shown_booting_first_and_detached()
    {
        var iso = Iso("debian-12.8.0-amd64-netinst.iso");
        var cut = RenderPage("devbox");

        await cut.InvokeAsync(() => cut.Find("input#media-path").Input(iso));
        await ClickAsync(cut, "media-attach");

        cut.WaitForAssertion(() => Assert.Equal(iso, cut.Find("#media-attached").GetAttribute("data-iso")), Wait);
        Assert.Equal("cdrom", cut.Find("#media-boot").GetAttribute("data-boot"));
        Assert.Contains("It boots from this ISO first, until its first shutdown", cut.Find("#media-boot").TextContent);
        Assert.Contains("device='cdrom'", Hypervisor.GetXml("devbox").Replace('"', '\''));

        await ClickAsync(cut, "media-detach");
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll("#media-attached")), Wait);
        Assert.Null((await Inventory.GetAsync("devbox")).InstallMedia);
    }

    [Fact]
    public async Task A_file_that_is_not_an_ISO_is_refused_in_place_and_a_running_qube_cannot_change_its_media()
    {
        var notIso = Path.Combine(Path.GetDirectoryName(PoolDir)!, "notes.txt");
        await File.WriteAllTextAsync(notIso, "hello");
        var cut = RenderPage("devbox");

        await cut.InvokeAsync(() => cut.Find("input#media-path").Input(notIso));
        await ClickAsync(cut, "media-attach");
        cut.WaitForAssertion(() => Assert.Equal($"{notIso} is not an ISO 9660 image (no CD001 volume descriptor); attach an installer's .iso file.",
            cut.Find("#media-error").TextContent.Trim()), Wait);
        Assert.Null((await Inventory.GetAsync("devbox")).InstallMedia);

        Hypervisor.Start("devbox");
        await Estate.ReconcileAsync();
        cut.WaitForAssertion(() => Assert.Contains("Shut devbox down to change its media.", cut.Find("#media-halted-only").TextContent), Wait);
        Assert.True(cut.Find("#media-attach").HasAttribute("disabled"));
    }

    [Fact]
    public void An_AppVM_has_no_media_card()
    {
        var cut = RenderPage("work");
        Assert.Empty(cut.FindAll("#qube-media"));
    }
}
