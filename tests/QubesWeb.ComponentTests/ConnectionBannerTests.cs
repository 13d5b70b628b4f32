// What the user sees while libvirt is unreachable: a banner that says so, and no action that could not work.
using Microsoft.AspNetCore.Components;
using QubesWeb.Components.Layout;
using QubesListPage = QubesWeb.Components.Pages.Qubes.QubesList;

namespace QubesWeb.ComponentTests;

public sealed class ConnectionBannerTests : ConsoleTestContext
{
    [Fact]
    public void A_lost_connection_shows_the_banner_with_libvirts_error_and_disables_actions_until_it_is_back()
    {
        SetRendererInfo(new RendererInfo("Server", true));
        var cut = Render<MainLayout>(p => p.Add(l => l.Body, (RenderFragment)(b =>
        {
            b.OpenComponent<QubesListPage>(0);
            b.CloseComponent();
        })));
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("button[aria-label='Start vault']")), Wait);
        Assert.Empty(cut.FindAll("#connection-down"));

        Hypervisor.SetConnection(false, "Failed to connect socket to '/run/libvirt/libvirt-sock': <b>Connection refused</b>");

        cut.WaitForAssertion(() =>
        {
            var banner = cut.Find("#connection-down");
            // libvirt's text is shown as text: its markup-looking part is not rendered as an element.
            Assert.Contains("<b>Connection refused</b>", banner.TextContent);
            Assert.DoesNotContain(banner.QuerySelectorAll("b"), e => e.TextContent == "Connection refused");
            Assert.Contains("libvirt down", cut.Find("#connection-state").TextContent);
            Assert.True(cut.Find("button[aria-label='Start vault']").HasAttribute("disabled"));
            Assert.True(cut.Find("#new-qube").HasAttribute("disabled"));
        }, Wait);

        Hypervisor.SetConnection(true);

        cut.WaitForAssertion(() =>
        {
            Assert.Empty(cut.FindAll("#connection-down"));
            Assert.False(cut.Find("button[aria-label='Start vault']").HasAttribute("disabled"));
        }, Wait);
    }
}
