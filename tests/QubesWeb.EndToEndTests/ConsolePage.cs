// What the tests do on the console's pages, in the console's own markup (see src/QubesWeb/Components).

namespace QubesWeb.EndToEndTests;

public static class ConsolePage
{
    /// <summary>Opens a page and waits until its Blazor circuit is live, so clicks reach the server.</summary>
    public static async Task OpenAsync(IPage page, string path)
    {
        var response = await page.GotoAsync(path);
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        await Expect(page.Locator("#qw-interactive")).ToHaveAttributeAsync("data-interactive", "true");
    }

    /// <summary>The button whose accessible name is exactly <paramref name="name"/> (e.g. "Start vault").</summary>
    public static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = name, Exact = true });

    /// <summary>The grid row of one qube on /qubes.</summary>
    public static ILocator QubeRow(IPage page, string name) =>
        page.Locator("#qubes-grid tbody tr").Filter(new LocatorFilterOptions { Has = page.Locator($".qw-name[data-qube='{name}']") });

    /// <summary>The run-state chip of one qube on /qubes.</summary>
    public static ILocator StateOf(IPage page, string name) => QubeRow(page, name).Locator("[data-state]");
}
