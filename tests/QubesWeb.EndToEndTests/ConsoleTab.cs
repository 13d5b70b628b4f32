// One test's console and browser tab: the real app on its own data folder and port, and a fresh browser context on
// it. Disposed, the context closes first, then the console stops and its data folder goes.

namespace QubesWeb.EndToEndTests;

public sealed class ConsoleTab(ConsoleHost host, IPage page) : IAsyncDisposable
{
    public ConsoleHost Host { get; } = host;

    /// <summary>The tab; more tabs of the same browser context come from <c>Page.Context.NewPageAsync()</c>.</summary>
    public IPage Page { get; } = page;

    public void Deconstruct(out ConsoleHost host, out IPage page) => (host, page) = (Host, Page);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Page.Context.CloseAsync();
        }
        finally
        {
            await Host.DisposeAsync();
        }
    }
}
